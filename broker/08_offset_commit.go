package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// OffsetCommit: v0-9. v1 adds generation and member id (and a commit
// timestamp per partition), v2-4 a retention time (the offset's own expiry,
// as Kafka still honours it; from v5 offsets expire
// offsets.retention.minutes after their group empties, KIP-211), v6 leader epochs,
// v7 group.instance.id, v8 is flexible, v9 carries a consumer group's member
// epoch as the generation (KIP-848; consumer groups need it). v10 names
// topics by id (not yet).
// The response comes once the commit is in __consumer_offsets.
var offsetCommitVersions = versions{0, 9}

func (b *Broker) handleOffsetCommit(rc *reqCtx, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	if rc.version == 0 {
		req.Generation = -1 // v0 commits are always simple commits
	}
	resp, err := b.coord.groups.CommitOffsets(rc.ctx, req)
	if err == nil {
		return resp, nil
	}
	code, err := coordinatorFailed(rc, err)
	if err != nil {
		return nil, err
	}
	resp = req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			st.Partitions = append(st.Partitions, kmsg.OffsetCommitResponseTopicPartition{Partition: rp.Partition, ErrorCode: code})
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
