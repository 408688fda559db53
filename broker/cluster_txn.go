package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactions on a cluster: the transaction coordinator (the leader of the
// transactional id's __transaction_state partition) writes each marker on
// the leader of the marker's partition: its own log when it leads it, else
// through WriteTxnMarkers (27) to the leader, as Kafka's coordinator does.
// Not done yet: KIP-890's verification that a transactional batch's
// partition is in its transaction (AddPartitionsToTxn v4 verifyOnly to the
// coordinator), which a cluster skips.

// WriteTxnMarkers: v0-1 (v2 adds KIP-890 part 2's transaction version).
var writeTxnMarkersVersions = versions{0, 1}

// partitionLeader is the leader of a partition in this node's image, -1
// for none.
func (c *cluster) partitionLeader(topic string, partition int32) int32 {
	return c.checkLeader(topic, partition, -1).leader
}

// forwardMarker writes one marker on the partition's leader.
func (c *cluster) forwardMarker(ctx context.Context, leader int32, topic string, partition int32, producerID int64, epoch int16, commit bool) error {
	if _, ok := c.voters[leader]; !ok {
		return fmt.Errorf("transaction marker for %s-%d: leader %d has no CONTROLLER endpoint", topic, partition, leader)
	}
	cl, err := c.client(leader)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = producerID, epoch, commit
	m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: topic, Partitions: []int32{partition}}}
	req.Markers = append(req.Markers, m)
	r, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return fmt.Errorf("transaction marker for %s-%d to node %d: %w", topic, partition, leader, err)
	}
	resp := r.(*kmsg.WriteTxnMarkersResponse)
	if len(resp.Markers) == 1 && len(resp.Markers[0].Topics) == 1 && len(resp.Markers[0].Topics[0].Partitions) == 1 {
		return kerr.ErrorForCode(resp.Markers[0].Topics[0].Partitions[0].ErrorCode)
	}
	return fmt.Errorf("transaction marker for %s-%d: malformed WriteTxnMarkers response", topic, partition)
}

// handleWriteTxnMarkers writes markers a transaction coordinator sends to
// this node for the partitions it leads.
func (b *Broker) handleWriteTxnMarkers(rc *reqCtx, req *kmsg.WriteTxnMarkersRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, t := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = p
				if l := b.cluster.checkLeader(t.Topic, p, -1); l.code != 0 {
					rp.ErrorCode = l.code
				} else if err := (txnBackend{b}).writeMarkerHere(rc.ctx, t.Topic, p, m.ProducerID, m.ProducerEpoch, m.Committed); err != nil {
					rp.ErrorCode = errorCode(err)
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	return resp, nil
}
