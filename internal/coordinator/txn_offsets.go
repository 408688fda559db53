package coordinator

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnOffsetRecords checks the partitions of a TxnOffsetCommit as
// CommitOffsets does (known partition, offset.metadata.max.bytes) and
// returns the __consumer_offsets records for the accepted ones, which the
// broker writes as the producer's transactional batch, with the response
// carrying each partition's error. The group's generation and member (v3+)
// are not checked. It reads only configuration, so it does not go through
// the loop.
func (c *Coordinator) TxnOffsetRecords(req *kmsg.TxnOffsetCommitRequest) ([]Record, *kmsg.TxnOffsetCommitResponse) {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	now := time.Now()
	var recs []Record
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			var meta string
			if rp.Metadata != nil {
				meta = *rp.Metadata
			}
			switch {
			case c.cfg.KnownPartition != nil && !c.cfg.KnownPartition(rt.Topic, rp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case len(meta) > c.cfg.MaxMetadataBytes:
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				epoch := rp.LeaderEpoch
				if req.Version < 2 {
					epoch = -1
				}
				o := committed{offset: rp.Offset, leaderEpoch: epoch, metadata: meta, commitTime: now}
				recs = append(recs, Record{Key: offsetKey(req.Group, topicPartition{rt.Topic, rp.Partition}), Value: offsetValue(o)})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return recs, resp
}

// ErrLoading is returned by ApplyTxnOffsets before Load has finished.
var ErrLoading = errors.New("coordinator: loading")

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
