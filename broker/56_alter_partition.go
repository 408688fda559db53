package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// AlterPartition: v0-3, to the active controller of a cluster, from a
// partition's leader (issue 12's replication shrinks and expands ISRs
// with it). v2 names topics by id, v3 gives the new ISR's broker epochs.
var alterPartitionVersions = versions{0, 3}

func (b *Broker) handleAlterPartition(rc *reqCtx, req *kmsg.AlterPartitionRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
	codes := map[[2]int]int16{} // [topic index, partition index]
	_, err := b.cluster.decide(rc.ctx, func(img *metadata.Image) ([]metadata.Record, error) {
		if br := img.Brokers[req.BrokerID]; br == nil || br.Epoch != req.BrokerEpoch {
			return nil, kerr.StaleBrokerEpoch
		}
		var out []metadata.Record
		for ti, rt := range req.Topics {
			id := rt.TopicID
			if rc.version < 2 {
				if t := img.Topics[rt.Topic]; t != nil {
					id = t.ID
				}
			}
			for pi, rp := range rt.Partitions {
				isr, epochs := rp.NewISR, []int64(nil)
				if rc.version >= 3 {
					isr = nil
					for _, m := range rp.NewEpochISR {
						isr, epochs = append(isr, m.BrokerID), append(epochs, m.BrokerEpoch)
					}
				}
				change, err := img.AlterPartition(req.BrokerID, id, rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch, isr, epochs)
				if err != nil {
					codes[[2]int{ti, pi}] = errorCode(err)
					continue
				}
				out = append(out, change)
			}
		}
		return out, nil
	})
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	b.cluster.q.View(func(img *metadata.Image) {
		for ti, rt := range req.Topics {
			st := kmsg.NewAlterPartitionResponseTopic()
			st.Topic, st.TopidID = rt.Topic, rt.TopicID
			if t := img.Topics[rt.Topic]; rc.version < 2 && t != nil {
				st.TopidID = t.ID
			}
			for pi, rp := range rt.Partitions {
				sp := kmsg.NewAlterPartitionResponseTopicPartition()
				sp.Partition = rp.Partition
				if code := codes[[2]int{ti, pi}]; code != 0 {
					if code == kerr.UnknownTopicOrPartition.Code && rc.version >= 2 {
						code = kerr.UnknownTopicID.Code
					}
					sp.ErrorCode = code
				} else if p := img.Partition(st.TopidID, rp.Partition); p != nil {
					sp.LeaderID, sp.LeaderEpoch, sp.ISR, sp.PartitionEpoch = p.Leader, p.LeaderEpoch, slices.Clone(p.ISR), p.PartitionEpoch
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
	})
	return resp, nil
}
