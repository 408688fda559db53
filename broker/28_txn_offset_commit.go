package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/coordinator"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// TxnOffsetCommit: v0-4. v2 adds leader epochs, v3 the group generation and
// member (KIP-447, checked like OffsetCommit's) and PRODUCER_FENCED, v3 is
// flexible. v5
// belongs to transaction.version 2, which kafkit does not advertise. The
// offsets go into __consumer_offsets as the producer's transactional batch
// and become the group's committed offsets when the commit marker is
// written.
var txnOffsetCommitVersions = versions{0, 4}

func (b *Broker) handleTxnOffsetCommit(rc *reqCtx, req *kmsg.TxnOffsetCommitRequest) (kmsg.Response, error) {
	fenced := kerr.InvalidProducerEpoch
	if rc.version >= 3 {
		fenced = kerr.ProducerFenced
	}
	write := func(partition int32, recs []coordinator.Record) (int64, *kerr.Error) {
		t, err := b.offsetsTopic()
		var base int64
		if err == nil {
			base, err = b.appendBatch(t, partition, recs, recordbatch.Producer{ID: req.ProducerID, Epoch: req.ProducerEpoch, BaseSequence: -1})
		}
		if err != nil {
			b.log.Warn("writing transactional offsets", "group", req.Group, "producer_id", req.ProducerID, "err", err)
			return -1, txnError(err, fenced)
		}
		return base, nil
	}
	var resp *kmsg.TxnOffsetCommitResponse
	var closing error
	commit := func() { resp, closing = b.coord.groups.CommitTxnOffsets(rc.ctx, req, write) }
	var e *kerr.Error
	if b.cluster != nil {
		// The group's coordinator is mostly another broker than the
		// transaction's; like Kafka's it does not ask that one (KIP-890's
		// verification through it is not done on a cluster yet).
		commit()
	} else {
		e = b.coord.txns.CommitOffsets(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, rc.version, commit)
	}
	if closing != nil {
		// The group coordinator stopped: the broker is closing.
		return nil, closing
	}
	if e != nil {
		resp = req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				st.Partitions = append(st.Partitions, kmsg.TxnOffsetCommitResponseTopicPartition{Partition: rp.Partition, ErrorCode: e.Code})
			}
			resp.Topics = append(resp.Topics, st)
		}
	}
	return resp, nil
}
