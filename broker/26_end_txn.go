package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn: v0-4. v2 answers PRODUCER_FENCED (KIP-588; older versions get
// INVALID_PRODUCER_EPOCH), v3 is flexible, v4 marks clients that know
// TRANSACTION_ABORTABLE. v5 belongs to transaction.version 2 (KIP-890 part
// 2, an epoch bump at every commit), which kafkit does not advertise. The
// answer comes once every marker is written.
var endTxnVersions = versions{0, 4}

func (b *Broker) handleEndTxn(rc *reqCtx, req *kmsg.EndTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if e := b.coord.txns.EndTxn(rc.ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit, rc.version); e != nil {
		resp.ErrorCode = e.Code
	}
	return resp, nil
}
