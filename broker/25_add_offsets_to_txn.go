package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddOffsetsToTxn: v0-4. v2 answers PRODUCER_FENCED (KIP-588; older
// versions get INVALID_PRODUCER_EPOCH), v3 is flexible, v4 only marks
// clients that know TRANSACTION_ABORTABLE. It adds the group's
// __consumer_offsets partition to the transaction, creating the topic on
// first use.
var addOffsetsToTxnVersions = versions{0, 4}

func (b *Broker) handleAddOffsetsToTxn(rc *reqCtx, req *kmsg.AddOffsetsToTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if !b.leadsInternal(txnStateTopic)(b.coord.txns.TxnPartitionFor(req.TransactionalID)) {
		// Not this node's transactional id: say so before creating the
		// offsets topic, as Kafka's coordinator checks ownership first.
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	}
	if _, err := b.offsetsTopic(); err != nil {
		b.log.Warn("creating "+offsetsTopic, "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	if e := b.coord.txns.AddOffsets(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, rc.version); e != nil {
		resp.ErrorCode = e.Code
	}
	return resp, nil
}
