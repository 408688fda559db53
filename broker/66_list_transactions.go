package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListTransactions: v0-2. v1 adds the duration filter (KIP-994), v2 the
// transactional id pattern (KIP-1152).
var listTransactionsVersions = versions{0, 2}

func (b *Broker) handleListTransactions(rc *reqCtx, req *kmsg.ListTransactionsRequest) (kmsg.Response, error) {
	return b.coord.txns.ListTransactions(req), nil
}
