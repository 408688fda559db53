package coordinator

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnOffsetRecords checks a TxnOffsetCommit as CommitOffsets checks a
// commit (the member and generation, KIP-447, unless the request carries
// none of them as before v3; known partitions; offset.metadata.max.bytes)
// and returns the __consumer_offsets records for the accepted partitions,
// which the broker writes as the producer's transactional batch, with the
// response carrying each partition's error. Nothing is written or
// committed here.
func (c *Coordinator) TxnOffsetRecords(ctx context.Context, req *kmsg.TxnOffsetCommitRequest) ([]Record, *kmsg.TxnOffsetCommitResponse, error) {
	type result struct {
		recs []Record
		resp *kmsg.TxnOffsetCommitResponse
	}
	r, err := call(ctx, c, func() result {
		recs, resp := c.txnOffsetRecords(req)
		return result{recs, resp}
	})
	return r.recs, r.resp, err
}

func (c *Coordinator) txnOffsetRecords(req *kmsg.TxnOffsetCommitRequest) ([]Record, *kmsg.TxnOffsetCommitResponse) {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	var gerr *kerr.Error
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Group, oc.Generation, oc.MemberID, oc.InstanceID = req.Group, req.Generation, req.MemberID, req.InstanceID
		_, gerr = c.commitAllowed(oc)
	}
	now := time.Now()
	var recs []Record
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			tp := topicPartition{rt.Topic, rp.Partition}
			o, code := c.checkOffset(gerr, tp, rp.Offset, epochSince(req.Version, 2, rp.LeaderEpoch), rp.Metadata, now)
			if sp.ErrorCode = code; code == 0 {
				recs = append(recs, Record{Key: offsetKey(req.Group, tp), Value: offsetValue(o)})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return recs, resp
}

// ApplyTxnOffsets makes the offset records of a committed transaction
// (built by TxnOffsetRecords) the groups' committed offsets. They are in
// __consumer_offsets already, made visible by the commit marker, so nothing
// is written. It fails with ErrLoading until Load has finished; a Load
// that replays the marker applies them itself.
func (c *Coordinator) ApplyTxnOffsets(ctx context.Context, recs []Record) error {
	err, cerr := call(ctx, c, func() error {
		if !c.loaded {
			return ErrLoading
		}
		l := loader{groups: c.groups, now: time.Now()}
		for _, r := range recs {
			if err := l.apply(r); err != nil {
				return err
			}
		}
		return nil
	})
	return errors.Join(cerr, err)
}
