package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTransactions: v0 (the only version).
var describeTransactionsVersions = versions{0, 0}

func (b *Broker) handleDescribeTransactions(rc *reqCtx, req *kmsg.DescribeTransactionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	states, e := b.coord.txns.DescribeTransactions(req.TransactionalIDs)
	if e != nil {
		for _, id := range req.TransactionalIDs {
			s := kmsg.NewDescribeTransactionsResponseTransactionState()
			s.TransactionalID, s.ErrorCode = id, e.Code
			resp.TransactionStates = append(resp.TransactionStates, s)
		}
		return resp, nil
	}
	resp.TransactionStates = states
	return resp, nil
}
