package coordinator

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestEndTxnWhilePrepared: a transaction left in PrepareCommit (its markers
// failed) answers a retried commit CONCURRENT_TRANSACTIONS and an abort
// INVALID_TXN_STATE, as Kafka's handleEndTransaction does; the same for
// PrepareAbort the other way round. Not reachable over TCP without a
// failing marker write, hence here.
func TestEndTxnWhilePrepared(t *testing.T) {
	for _, commit := range []bool{true, false} {
		f := &fakeTxnBackend{}
		c := newTestTxnCoordinator(t, f)
		pid, epoch := mustInit(t, c, InitProducerIDRequest{TransactionalID: "tx"})
		if e := c.AddPartitions("tx", pid, epoch, map[string][]int32{"a": {0}}, 3, 2); e != nil {
			t.Fatal(e)
		}
		f.failMarkers = true
		if e := c.EndTxn(t.Context(), "tx", pid, epoch, commit, 3); e != kerr.ConcurrentTransactions {
			t.Fatalf("commit %v with failing markers: %v", commit, e)
		}
		if e := c.EndTxn(t.Context(), "tx", pid, epoch, commit, 3); e != kerr.ConcurrentTransactions {
			t.Errorf("commit %v again while prepared: %v, want CONCURRENT_TRANSACTIONS", commit, e)
		}
		if e := c.EndTxn(t.Context(), "tx", pid, epoch, !commit, 3); e != kerr.InvalidTxnState {
			t.Errorf("commit %v the other way while prepared: %v, want INVALID_TXN_STATE", !commit, e)
		}
	}
}
