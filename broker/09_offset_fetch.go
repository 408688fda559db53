package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch: v0-9. v1 reads Kafka-stored offsets (v0 meant ZooKeeper;
// kafkit answers both from __consumer_offsets), v2 allows null topics (all
// of the group's offsets) and a top-level error, v5 leader epochs, v6 is
// flexible, v7 RequireStable (partitions with a pending transactional
// offset answer UNSTABLE_OFFSET_COMMIT, KIP-447), v8 batches groups, v9 member epochs of the
// KIP-848 protocol (a consumer group's member must name its current epoch). v10 names topics by id (not yet).
var offsetFetchVersions = versions{0, 9}

func (b *Broker) handleOffsetFetch(rc *reqCtx, req *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	groups := req.Groups
	if rc.version < 8 {
		// The single group of older versions, in the v8 form.
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = req.Group
		if req.Topics != nil {
			g.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
		}
		for _, t := range req.Topics {
			g.Topics = append(g.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
		groups = []kmsg.OffsetFetchRequestGroup{g}
	}
	for _, rg := range groups {
		out, err := b.coord.groups.FetchOffsets(rc.ctx, rg, req.RequireStable)
		if err != nil {
			code, err := coordinatorFailed(rc, err)
			if err != nil {
				return nil, err
			}
			out = kmsg.NewOffsetFetchResponseGroup()
			out.Group, out.ErrorCode = rg.Group, code
		}
		resp.Groups = append(resp.Groups, out)
	}
	if rc.version >= 8 {
		return resp, nil
	}
	g := resp.Groups[0]
	resp.Groups = nil
	resp.ErrorCode = g.ErrorCode
	if rc.version < 2 && g.ErrorCode != 0 {
		// No top-level error before v2: every requested partition carries it.
		for _, t := range groups[0].Topics {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.Offset, rp.ErrorCode = p, -1, g.ErrorCode
				rt.Partitions = append(rt.Partitions, rp)
			}
			g.Topics = append(g.Topics, rt)
		}
	}
	for _, t := range g.Topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
