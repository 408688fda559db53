package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch: v0-4 (v2 current leader epoch fencing, v3 replica
// id, v4 flexible). Followers ask it where an epoch of theirs ended on the
// leader, to truncate what the leader does not have (KIP-101, KIP-279);
// consumers ask it to detect a truncated log after a leader change
// (KIP-320). It is answered from the partition's leader epoch cache.
var offsetForLeaderEpochVersions = versions{0, 4}

func (b *Broker) handleOffsetForLeaderEpoch(rc *reqCtx, req *kmsg.OffsetForLeaderEpochRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		t := b.topics.get(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			current := rp.CurrentLeaderEpoch
			if rc.version < 2 {
				current = -1 // not in the request: not checked
			}
			// Kafka's Partition.lastOffsetForLeaderEpoch: the current leader
			// epoch is checked first (older: FENCED_LEADER_EPOCH, newer:
			// UNKNOWN_LEADER_EPOCH, -1: not checked), then leadership; a
			// follower's own request (ReplicaID >= 0) needs the leader too.
			// A single node leads every partition at epoch 0.
			leaderEpoch := int32(0)
			local := t != nil && rp.Partition >= 0 && int(rp.Partition) < len(t.partitions)
			switch {
			case b.cluster != nil:
				l := b.cluster.checkLeader(rt.Topic, rp.Partition, current)
				sp.ErrorCode, leaderEpoch = l.code, l.leaderEpoch
				if sp.ErrorCode == 0 && !local {
					// Led here by the metadata, but the log is not open yet.
					sp.ErrorCode = kerr.NotLeaderForPartition.Code
				}
			case !local:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case current > 0:
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			}
			if sp.ErrorCode == 0 {
				// An undefined answer (-1, -1) has no error, as in Kafka.
				sp.LeaderEpoch, sp.EndOffset = t.partitions[rp.Partition].log.EndOffsetForEpochAsLeader(leaderEpoch, rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
