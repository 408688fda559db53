package coordinator

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// While one transaction's markers are being written (on a cluster: round
// trips to the partitions' leaders and their high watermark waits), the
// coordinator serves every other transactional id: another producer
// starts, commits and is described, the timers run. The transaction
// itself is busy meanwhile and its own requests get
// CONCURRENT_TRANSACTIONS, as Kafka answers during a pending transition;
// its EndTxn answers once its markers are written.
func TestTxnMarkersDoNotBlockOtherTransactions(t *testing.T) {
	f := &fakeTxnBackend{}
	c := newTestTxnCoordinator(t, f)
	slowPID, slowEpoch := mustInit(t, c, InitProducerIDRequest{TransactionalID: "slow"})
	if e := c.AddPartitions("slow", slowPID, slowEpoch, map[string][]int32{"a": {0}}, 3, 2); e != nil {
		t.Fatal(e)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	f.mu.Lock()
	f.hold = func(pid int64) {
		if pid == slowPID {
			close(entered)
			<-release
		}
	}
	f.mu.Unlock()
	ended := make(chan *kerr.Error, 1)
	go func() { ended <- c.EndTxn(t.Context(), "slow", slowPID, slowEpoch, true, 3) }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow transaction's marker was never written")
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		pid, epoch, e := c.InitProducerID(t.Context(), InitProducerIDRequest{TransactionalID: "other", Timeout: 10 * time.Second, ProducerID: -1, Epoch: -1, Version: 4})
		if e != nil {
			t.Errorf("InitProducerId of another id: %v", e)
			return
		}
		if e := c.AddPartitions("other", pid, epoch, map[string][]int32{"b": {1}}, 3, 2); e != nil {
			t.Errorf("AddPartitionsToTxn of another id: %v", e)
		}
		if e := c.EndTxn(t.Context(), "other", pid, epoch, true, 3); e != nil {
			t.Errorf("EndTxn of another id: %v", e)
		}
		if s := txnState(t, c, "other"); s.State != "CompleteCommit" {
			t.Errorf("other transaction after its commit: %s", s.State)
		}
		c.abortTimedOut(t.Context(), time.Now())
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("another transaction waited for the slow one's markers")
	}
	if t.Failed() {
		return
	}
	if s := txnState(t, c, "slow"); s.State != "PrepareCommit" {
		t.Fatalf("slow transaction while its markers are written: %s, want PrepareCommit", s.State)
	}
	if e := c.AddPartitions("slow", slowPID, slowEpoch, map[string][]int32{"a": {1}}, 3, 2); e != kerr.ConcurrentTransactions {
		t.Fatalf("AddPartitionsToTxn of the busy transaction: %v, want CONCURRENT_TRANSACTIONS", e)
	}
	if e := c.EndTxn(t.Context(), "slow", slowPID, slowEpoch, true, 3); e != kerr.ConcurrentTransactions {
		t.Fatalf("EndTxn retried while the markers are written: %v, want CONCURRENT_TRANSACTIONS", e)
	}
	if _, _, e := c.InitProducerID(t.Context(), InitProducerIDRequest{TransactionalID: "slow", Timeout: 10 * time.Second, ProducerID: -1, Epoch: -1, Version: 4}); e != kerr.ConcurrentTransactions {
		t.Fatalf("InitProducerId of the busy id: %v, want CONCURRENT_TRANSACTIONS", e)
	}
	if errs, e := c.VerifyPartitions("slow", slowPID, slowEpoch, map[string][]int32{"a": {0}}); e != kerr.ConcurrentTransactions {
		t.Fatalf("verification of the ending transaction: %v %v, want CONCURRENT_TRANSACTIONS", errs, e)
	}
	select {
	case e := <-ended:
		t.Fatalf("EndTxn answered %v before its markers were written", e)
	default:
	}
	close(release)
	if e := <-ended; e != nil {
		t.Fatalf("EndTxn of the slow transaction: %v", e)
	}
	if s := txnState(t, c, "slow"); s.State != "CompleteCommit" {
		t.Fatalf("slow transaction after its markers: %s", s.State)
	}
}

// A transaction added to while it is being verified: the verification
// sees the partitions already added, not CONCURRENT_TRANSACTIONS (Kafka
// lets a verification through a pending Ongoing state).
func TestTxnVerifyWhileAddingPartitions(t *testing.T) {
	f := &fakeTxnBackend{}
	c := newTestTxnCoordinator(t, f)
	pid, epoch := mustInit(t, c, InitProducerIDRequest{TransactionalID: "tx"})
	if e := c.AddPartitions("tx", pid, epoch, map[string][]int32{"a": {0}}, 3, 2); e != nil {
		t.Fatal(e)
	}
	c.mu.Lock()
	tm := c.txns["tx"]
	tm.begin(tm.state) // an AddPartitionsToTxn writing its state
	c.mu.Unlock()
	errs, e := c.VerifyPartitions("tx", pid, epoch, map[string][]int32{"a": {0, 1}})
	if e != nil || errs["a"][0] != nil || errs["a"][1] != kerr.InvalidTxnState {
		t.Fatalf("verification while partitions are added: %v %v", errs, e)
	}
	if e := c.AddPartitions("tx", pid, epoch, map[string][]int32{"a": {1}}, 3, 2); e != kerr.ConcurrentTransactions {
		t.Fatalf("a second AddPartitionsToTxn meanwhile: %v, want CONCURRENT_TRANSACTIONS", e)
	}
	c.mu.Lock()
	tm.end()
	c.mu.Unlock()
}
