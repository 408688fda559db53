package coordinator

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnWriter appends the records of a TxnOffsetCommit to a partition of
// __consumer_offsets as the producer's transactional batch and returns its
// base offset, or the error the producer gets.
type TxnWriter func(partition int32, recs []Record) (int64, *kerr.Error)

// CommitTxnOffsets handles the group side of a TxnOffsetCommit: it checks
// the member and generation as Kafka checks a transactional commit, writes
// the accepted partitions' offsets through write and holds them, in the
// group, as the producer's pending offsets until CompleteTxnOffsets. All of
// it runs on the loop, so no OffsetFetch sees the offsets written but not
// pending, or neither pending nor committed.
func (c *Coordinator) CommitTxnOffsets(ctx context.Context, req *kmsg.TxnOffsetCommitRequest, write TxnWriter) (*kmsg.TxnOffsetCommitResponse, error) {
	return call(ctx, c, func() *kmsg.TxnOffsetCommitResponse { return c.commitTxn(req, write) })
}

func (c *Coordinator) commitTxn(req *kmsg.TxnOffsetCommitRequest, write TxnWriter) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	g, gerr := c.txnCommitAllowed(req)
	now := time.Now()
	var recs []Record
	var tps []topicPartition
	var os []committed
	var accepted []*kmsg.TxnOffsetCommitResponseTopicPartition
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.TxnOffsetCommitResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			sp.Partition = rp.Partition
			tp := topicPartition{rt.Topic, rp.Partition}
			o, code := c.checkOffset(gerr, tp, rp.Offset, epochSince(req.Version, 2, rp.LeaderEpoch), rp.Metadata, now)
			if sp.ErrorCode = code; code == 0 {
				recs = append(recs, Record{Key: offsetKey(req.Group, tp), Value: offsetValue(o)})
				tps, os, accepted = append(tps, tp), append(os, o), append(accepted, sp)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(recs) == 0 {
		return resp
	}
	base, e := write(c.PartitionFor(g.id), recs)
	if e != nil {
		for _, sp := range accepted {
			sp.ErrorCode = e.Code
		}
		return resp
	}
	c.groups[g.id] = g
	for i, tp := range tps {
		os[i].logOffset = base
		c.txns.hold(g, req.ProducerID, tp, os[i])
	}
	return resp
}

// txnCommitAllowed is Kafka's validation of a transactional offset commit:
// member and generation only when the request names them (KIP-447), and not
// the group's state, which the plain commit checks: Java's producer takes
// REBALANCE_IN_PROGRESS here as fatal.
func (c *Coordinator) txnCommitAllowed(req *kmsg.TxnOffsetCommitRequest) (*group, *kerr.Error) {
	if e := c.unavailable(req.Group); e != nil {
		return nil, e
	}
	g := c.groups[req.Group]
	switch {
	case g == nil && req.Generation >= 0:
		return nil, kerr.IllegalGeneration
	case g == nil:
		// Kafka creates the group, Empty, as for a simple commit.
		return newGroup(req.Group, time.Now()), nil
	case g.state == stateDead:
		return nil, kerr.CoordinatorNotAvailable
	case req.Generation < 0 && g.state == stateEmpty:
		return g, nil
	case req.Generation < 0 && req.MemberID == "" && req.InstanceID == nil:
		// Before v3 the request carries no membership to check.
		return g, nil
	case g.consumer != nil:
		if err := consumerCommitAllowed(g, req.MemberID, req.Generation, offsetCommitMemberEpochs); err != nil {
			return nil, err
		}
		return g, nil
	case req.InstanceID != nil && g.static[*req.InstanceID] == "":
		return nil, kerr.UnknownMemberID
	case g.fenced(req.InstanceID, req.MemberID):
		return nil, kerr.FencedInstanceID
	case g.members[req.MemberID] == nil:
		return nil, kerr.UnknownMemberID
	case req.Generation != g.generation:
		return nil, kerr.IllegalGeneration
	}
	return g, nil
}

// CompleteTxnOffsets ends the producer's pending offsets in a partition of
// __consumer_offsets once its transaction's marker is there (at
// markerOffset): on commit each becomes the committed offset unless a
// commit appended after it already is; on abort they are dropped. For a
// partition not loaded (yet) it is kept for the load, which applies it
// unless its replay met the marker.
func (c *Coordinator) CompleteTxnOffsets(ctx context.Context, partition int32, producerID int64, commit bool, markerOffset int64) error {
	_, err := call(ctx, c, func() struct{} {
		if partition < 0 || partition >= c.cfg.NumPartitions {
			return struct{}{}
		}
		if !c.loaded[partition] {
			c.deferred[partition] = append(c.deferred[partition], deferredCompletion{producerID, commit, markerOffset})
			return struct{}{}
		}
		c.txns.complete(c.groups, partition, producerID, c.PartitionFor, commit)
		return struct{}{}
	})
	return err
}

// txnIndex lists, by producer id, the groups holding offsets of the
// producer's open transaction.
type txnIndex map[int64]map[string]bool

func (x txnIndex) hold(g *group, producerID int64, tp topicPartition, o committed) {
	ps := g.txnOffsets[producerID]
	if ps == nil {
		ps = make(map[topicPartition]committed)
		g.txnOffsets[producerID] = ps
	}
	// Several commits of one transaction: the last one counts.
	ps[tp] = o
	if x[producerID] == nil {
		x[producerID] = make(map[string]bool)
	}
	x[producerID][g.id] = true
}

// complete ends the producer's pending offsets in the groups of one
// __consumer_offsets partition (partitionFor maps a group to its own).
func (x txnIndex) complete(groups map[string]*group, partition int32, producerID int64, partitionFor func(string) int32, commit bool) {
	for id := range x[producerID] {
		if partitionFor(id) != partition {
			continue
		}
		delete(x[producerID], id)
		g := groups[id]
		if g == nil {
			continue
		}
		if commit {
			for tp, o := range g.txnOffsets[producerID] {
				if cur, ok := g.offsets[tp]; !ok || cur.logOffset < o.logOffset {
					g.offsets[tp] = o
				}
			}
		}
		delete(g.txnOffsets, producerID)
	}
	if len(x[producerID]) == 0 {
		delete(x, producerID)
	}
}

// pendingTxn reports whether an open transaction holds an offset of tp.
func (g *group) pendingTxn(tp topicPartition) bool {
	for _, ps := range g.txnOffsets {
		if _, ok := ps[tp]; ok {
			return true
		}
	}
	return false
}
