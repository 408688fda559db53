package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTransactions: v0 (the only version).
var describeTransactionsVersions = versions{0, 0}

func (b *Broker) handleDescribeTransactions(rc *reqCtx, req *kmsg.DescribeTransactionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	resp.TransactionStates = b.coord.txns.DescribeTransactions(req.TransactionalIDs)
	return resp, nil
}
