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
	recs, resp, err := b.coord.groups.TxnOffsetRecords(rc.ctx, req)
	if err != nil {
		// The group coordinator stopped: the broker is closing.
		return nil, err
	}
	partition := b.coord.groups.PartitionFor(req.Group)
	write := func() *kerr.Error {
		if len(recs) == 0 {
			return nil
		}
		t, err := b.offsetsTopic()
		if err == nil {
			err = appendBatch(t, partition, recs, recordbatch.Producer{ID: req.ProducerID, Epoch: req.ProducerEpoch, BaseSequence: -1})
		}
		if err != nil {
			b.log.Warn("writing transactional offsets", "group", req.Group, "producer_id", req.ProducerID, "err", err)
			fenced := kerr.InvalidProducerEpoch
			if rc.version >= 3 {
				fenced = kerr.ProducerFenced
			}
			return txnError(err, fenced)
		}
		b.coord.txnOffsets.add(partition, req.ProducerID, cloneRecords(recs))
		return nil
	}
	if e := b.coord.txns.CommitOffsets(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, rc.version, write); e != nil {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if resp.Topics[i].Partitions[j].ErrorCode == 0 {
					resp.Topics[i].Partitions[j].ErrorCode = e.Code
				}
			}
		}
	}
	return resp, nil
}

func cloneRecords(recs []coordinator.Record) []coordinator.Record {
	out := make([]coordinator.Record, len(recs))
	for i, r := range recs {
		out[i] = coordinator.Record{Key: append([]byte(nil), r.Key...), Value: append([]byte(nil), r.Value...)}
	}
	return out
}
