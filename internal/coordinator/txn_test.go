package coordinator

import (
	"cmp"
	"context"
	"errors"
	"iter"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type txnMarker struct {
	topic      string
	partition  int32
	producerID int64
	epoch      int16
	commit     bool
}

// fakeTxnBackend records what the coordinator writes.
type fakeTxnBackend struct {
	mu          sync.Mutex // guards every field
	state       []Record   // __transaction_state, every partition, in write order
	partitions  []int32    // the partition of each state record
	markers     []txnMarker
	coordEpochs []int32 // of each marker, in write order
	failMarkers bool
	nextPID     int64
	// hold, when set, runs (without mu) before each marker is written.
	hold func(producerID int64)
}

func (f *fakeTxnBackend) AppendTxnState(partition int32, recs []Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range recs {
		f.state = append(f.state, r)
		f.partitions = append(f.partitions, partition)
	}
	return nil
}

func (f *fakeTxnBackend) WriteTxnMarker(_ context.Context, topic string, partition int32, producerID int64, epoch int16, coordinatorEpoch int32, commit bool) error {
	f.mu.Lock()
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		hold(producerID)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failMarkers {
		return errors.New("injected marker failure")
	}
	f.markers = append(f.markers, txnMarker{topic, partition, producerID, epoch, commit})
	f.coordEpochs = append(f.coordEpochs, coordinatorEpoch)
	return nil
}

func (f *fakeTxnBackend) NewProducerID() (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextPID++
	return f.nextPID, nil
}

func (f *fakeTxnBackend) takeMarkers() []txnMarker {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.markers
	f.markers = nil
	// A transaction's markers are written concurrently: in the
	// coordinator's (topic, partition) order here.
	slices.SortStableFunc(m, func(a, b txnMarker) int {
		return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
	return m
}

func (f *fakeTxnBackend) records() iter.Seq2[Record, error] {
	f.mu.Lock()
	recs := slices.Clone(f.state)
	f.mu.Unlock()
	return func(yield func(Record, error) bool) {
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func newTestTxnCoordinator(t *testing.T, f *fakeTxnBackend) *TxnCoordinator {
	t.Helper()
	c, err := NewTxnCoordinator(TxnConfig{NumPartitions: 5, MaxTimeout: time.Minute, OffsetsPartitionFor: func(g string) int32 { return PartitionFor(g, 7) }}, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Load(t.Context(), f.records()); err != nil {
		t.Fatal(err)
	}
	return c
}

func mustInit(t *testing.T, c *TxnCoordinator, req InitProducerIDRequest) (int64, int16) {
	t.Helper()
	if req.Timeout == 0 {
		req.Timeout = 10 * time.Second
	}
	if req.Version == 0 {
		req.Version = 4
		if req.ProducerID == 0 && req.Epoch == 0 {
			req.ProducerID, req.Epoch = -1, -1
		}
	}
	id, epoch, e := c.InitProducerID(t.Context(), req)
	if e != nil {
		t.Fatalf("InitProducerID(%+v): %v", req, e)
	}
	return id, epoch
}

func txnState(t *testing.T, c *TxnCoordinator, id string) kmsg.DescribeTransactionsResponseTransactionState {
	t.Helper()
	s := c.DescribeTransactions([]string{id})
	if len(s) != 1 {
		t.Fatalf("DescribeTransactions: %v", s)
	}
	return s[0]
}

func TestTxnCommitAndAbort(t *testing.T) {
	f := &fakeTxnBackend{}
	c := newTestTxnCoordinator(t, f)
	pid, epoch := mustInit(t, c, InitProducerIDRequest{TransactionalID: "tx"})
	if epoch != 0 || txnState(t, c, "tx").State != "Empty" {
		t.Fatalf("new transactional id: pid %d epoch %d state %+v", pid, epoch, txnState(t, c, "tx"))
	}
	if e := c.EndTxn(t.Context(), "tx", pid, epoch, true, 3); e != kerr.InvalidTxnState {
		t.Fatalf("EndTxn without a transaction: %v", e)
	}
	if e := c.AddPartitions("tx", pid, epoch, map[string][]int32{"a": {1, 0}, "b": {2}}, 3, 2); e != nil {
		t.Fatal(e)
	}
	if e := c.AddOffsets("tx", pid, epoch, "g", 3); e != nil {
		t.Fatal(e)
	}
	wrote := 0
	write := func() { wrote++ }
	if e := c.CommitOffsets("tx", pid, epoch, "g", 3, write); e != nil || wrote != 1 {
		t.Fatalf("CommitOffsets after AddOffsets: %v, %d writes", e, wrote)
	}
	if e := c.CommitOffsets("tx", pid, epoch, "other-group", 3, write); e != kerr.InvalidTxnState || wrote != 1 {
		t.Fatalf("CommitOffsets of a group not added: %v, %d writes", e, wrote)
	}
	if errs, e := c.VerifyPartitions("tx", pid, epoch, map[string][]int32{"a": {0, 5}}); e != nil || len(errs) != 1 || errs["a"][5] != kerr.InvalidTxnState || errs["a"][0] != nil {
		t.Fatalf("verify-only of an added and a missing partition: %v %v", errs, e)
	}
	s := txnState(t, c, "tx")
	if s.State != "Ongoing" || len(s.Topics) != 3 || s.StartTimestamp < 0 {
		t.Fatalf("ongoing: %+v", s)
	}
	if e := c.EndTxn(t.Context(), "tx", pid, epoch, true, 3); e != nil {
		t.Fatal(e)
	}
	want := []txnMarker{{OffsetsTopic, PartitionFor("g", 7), pid, 0, true}, {"a", 0, pid, 0, true}, {"a", 1, pid, 0, true}, {"b", 2, pid, 0, true}}
	if got := f.takeMarkers(); !slices.Equal(got, want) {
		t.Fatalf("commit markers %v, want %v", got, want)
	}
	if s := txnState(t, c, "tx"); s.State != "CompleteCommit" || len(s.Topics) != 0 {
		t.Fatalf("after commit: %+v", s)
	}
	// A retried commit succeeds without new markers; an abort now is wrong.
	if e := c.EndTxn(t.Context(), "tx", pid, epoch, true, 3); e != nil {
		t.Fatalf("retried commit: %v", e)
	}
	if e := c.EndTxn(t.Context(), "tx", pid, epoch, false, 3); e != kerr.InvalidTxnState {
		t.Fatalf("abort after commit: %v", e)
	}
	if e := c.AddPartitions("tx", pid, epoch, map[string][]int32{"c": {0}}, 3, 2); e != nil {
		t.Fatal(e)
	}
	if e := c.EndTxn(t.Context(), "tx", pid, epoch, false, 3); e != nil {
		t.Fatal(e)
	}
	if got := f.takeMarkers(); !slices.Equal(got, []txnMarker{{"c", 0, pid, 0, false}}) {
		t.Fatalf("abort markers %v", got)
	}
}

func TestTxnFencing(t *testing.T) {
	for _, tc := range []struct {
		version int16
		want    *kerr.Error
	}{{1, kerr.InvalidProducerEpoch}, {2, kerr.ProducerFenced}} {
		f := &fakeTxnBackend{}
		c := newTestTxnCoordinator(t, f)
		pid, old := mustInit(t, c, InitProducerIDRequest{TransactionalID: "tx"})
		if e := c.AddPartitions("tx", pid, old, map[string][]int32{"a": {0}}, tc.version, 2); e != nil {
			t.Fatal(e)
		}
		// A second instance fences the first: its transaction is aborted
		// with markers of the new epoch, which the new instance gets.
		pid2, epoch := mustInit(t, c, InitProducerIDRequest{TransactionalID: "tx"})
		if pid2 != pid || epoch != old+1 {
			t.Fatalf("second instance got %d/%d", pid2, epoch)
		}
		if got := f.takeMarkers(); !slices.Equal(got, []txnMarker{{"a", 0, pid, epoch, false}}) {
			t.Fatalf("fencing markers %v", got)
		}
		if e := c.AddPartitions("tx", pid, old, map[string][]int32{"a": {0}}, tc.version, 2); e != tc.want {
			t.Errorf("v%d AddPartitions of the fenced epoch: %v, want %v", tc.version, e, tc.want)
		}
		if e := c.EndTxn(t.Context(), "tx", pid, old, true, tc.version); e != tc.want {
			t.Errorf("v%d EndTxn of the fenced epoch: %v, want %v", tc.version, e, tc.want)
		}
		if e := c.EndTxn(t.Context(), "tx", pid+100, epoch, true, tc.version); e != kerr.InvalidProducerIDMapping {
			t.Errorf("EndTxn with another producer id: %v", e)
		}
		if e := c.AddPartitions("nobody", pid, epoch, map[string][]int32{"a": {0}}, tc.version, 2); e != kerr.InvalidProducerIDMapping {
			t.Errorf("unknown transactional id: %v", e)
		}
	}
}

// TestTxnEpochBumpKIP360: a producer that knows its id and epoch gets a
// bump; its retry gets the same answer; a stale instance is fenced.
func TestTxnEpochBumpKIP360(t *testing.T) {
	c := newTestTxnCoordinator(t, &fakeTxnBackend{})
	pid, epoch := mustInit(t, c, InitProducerIDRequest{TransactionalID: "tx"})
	req := InitProducerIDRequest{TransactionalID: "tx", ProducerID: pid, Epoch: epoch, Version: 4}
	pid2, epoch2 := mustInit(t, c, req)
	if pid2 != pid || epoch2 != epoch+1 {
		t.Fatalf("bump: %d/%d", pid2, epoch2)
	}
	if p, e := mustInit(t, c, req); p != pid2 || e != epoch2 {
		t.Fatalf("retried bump: %d/%d, want %d/%d", p, e, pid2, epoch2)
	}
	if _, _, e := c.InitProducerID(t.Context(), InitProducerIDRequest{TransactionalID: "tx", Timeout: time.Second, ProducerID: pid, Epoch: epoch + 5, Version: 4}); e != kerr.ProducerFenced {
		t.Fatalf("unknown epoch: %v", e)
	}
	if _, _, e := c.InitProducerID(t.Context(), InitProducerIDRequest{TransactionalID: "tx", Timeout: time.Second, ProducerID: pid, Epoch: epoch + 5, Version: 3}); e != kerr.InvalidProducerEpoch {
		t.Fatalf("unknown epoch before v4: %v", e)
	}
}

func TestTxnEpochExhaustionAllocatesNewID(t *testing.T) {
	f := &fakeTxnBackend{nextPID: 500}
	old := &txnMeta{id: "tx", producerID: 7, epoch: math.MaxInt16 - 1, timeout: time.Second, state: kmsg.TransactionStateCompleteCommit,
		partitions: map[string]map[int32]bool{}}
	k := kmsg.TxnMetadataKey{TransactionalID: "tx"}
	f.state = append(f.state, Record{Key: k.AppendTo(nil), Value: old.value().AppendTo(nil)})
	c := newTestTxnCoordinator(t, f)
	if pid, epoch := mustInit(t, c, InitProducerIDRequest{TransactionalID: "tx"}); pid != 501 || epoch != 0 {
		t.Fatalf("after the last epoch: %d/%d, want a new id at epoch 0", pid, epoch)
	}
}

func TestTxnTimeoutValidation(t *testing.T) {
	c := newTestTxnCoordinator(t, &fakeTxnBackend{})
	for _, d := range []time.Duration{-time.Second, 2 * time.Minute} {
		if _, _, e := c.InitProducerID(t.Context(), InitProducerIDRequest{TransactionalID: "tx", Timeout: d, ProducerID: -1, Epoch: -1}); e != kerr.InvalidTransactionTimeout {
			t.Errorf("timeout %v: %v", d, e)
		}
	}
}

func TestTxnLoadingAnswersLoadInProgress(t *testing.T) {
	c, err := NewTxnCoordinator(TxnConfig{OffsetsPartitionFor: func(string) int32 { return 0 }}, &fakeTxnBackend{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, e := c.InitProducerID(t.Context(), InitProducerIDRequest{TransactionalID: "tx", Timeout: time.Second}); e != kerr.CoordinatorLoadInProgress {
		t.Fatalf("before Load: %v", e)
	}
}

// TestTxnRecovery: state written by one coordinator is what the next one
// loads; a transaction prepared but not completed (its markers failed) is
// completed at load, and an ongoing one resumes and times out.
func TestTxnRecovery(t *testing.T) {
	f := &fakeTxnBackend{}
	c := newTestTxnCoordinator(t, f)
	pidA, epochA := mustInit(t, c, InitProducerIDRequest{TransactionalID: "prepared"})
	pidB, epochB := mustInit(t, c, InitProducerIDRequest{TransactionalID: "ongoing", Timeout: 5 * time.Second})
	for _, tx := range []struct {
		id    string
		pid   int64
		epoch int16
	}{{"prepared", pidA, epochA}, {"ongoing", pidB, epochB}} {
		if e := c.AddPartitions(tx.id, tx.pid, tx.epoch, map[string][]int32{"t": {0, 1}}, 3, 2); e != nil {
			t.Fatal(e)
		}
	}
	f.failMarkers = true
	if e := c.EndTxn(t.Context(), "prepared", pidA, epochA, true, 3); e == nil {
		t.Fatal("EndTxn succeeded without markers")
	}
	if s := txnState(t, c, "prepared"); s.State != "PrepareCommit" {
		t.Fatalf("after failed markers: %+v", s)
	}
	if e := c.AddPartitions("prepared", pidA, epochA, map[string][]int32{"t": {2}}, 3, 2); e != kerr.ConcurrentTransactions {
		t.Fatalf("AddPartitions while prepared: %v", e)
	}
	// A restart while markers still fail keeps it prepared; the timer
	// check completes it once they work.
	c1 := newTestTxnCoordinator(t, f)
	if s := txnState(t, c1, "prepared"); s.State != "PrepareCommit" {
		t.Fatalf("after a load with failing markers: %+v", s)
	}
	f.failMarkers = false
	c1.abortTimedOut(t.Context(), time.Now())
	if s := txnState(t, c1, "prepared"); s.State != "CompleteCommit" {
		t.Fatalf("after the retry: %+v", s)
	}
	f.takeMarkers()
	// The state log now ends with CompleteCommit; cut it back to before so
	// the next load sees the transaction prepared again.
	f.mu.Lock()
	for i := len(f.state) - 1; i >= 0; i-- {
		var v kmsg.TxnMetadataValue
		if v.ReadFrom(f.state[i].Value) == nil && v.State == kmsg.TransactionStatePrepareCommit {
			f.state, f.partitions = f.state[:i+1], f.partitions[:i+1]
			break
		}
	}
	f.mu.Unlock()

	c2 := newTestTxnCoordinator(t, f) // a restart
	if got := f.takeMarkers(); !slices.Equal(got, []txnMarker{{"t", 0, pidA, epochA, true}, {"t", 1, pidA, epochA, true}}) {
		t.Fatalf("markers written at load: %v", got)
	}
	if s := txnState(t, c2, "prepared"); s.State != "CompleteCommit" {
		t.Fatalf("prepared transaction after load: %+v", s)
	}
	s := txnState(t, c2, "ongoing")
	if s.State != "Ongoing" || s.TimeoutMillis != 5000 || len(s.Topics) != 1 {
		t.Fatalf("ongoing transaction after load: %+v", s)
	}
	started := time.UnixMilli(s.StartTimestamp)
	c2.abortTimedOut(t.Context(), started.Add(4*time.Second))
	if got := f.takeMarkers(); len(got) != 0 {
		t.Fatalf("aborted before its timeout: %v", got)
	}
	c2.abortTimedOut(t.Context(), started.Add(6*time.Second))
	if got := f.takeMarkers(); !slices.Equal(got, []txnMarker{{"t", 0, pidB, epochB + 1, false}, {"t", 1, pidB, epochB + 1, false}}) {
		t.Fatalf("timeout abort markers: %v", got)
	}
	if e := c2.EndTxn(t.Context(), "ongoing", pidB, epochB, true, 3); e != kerr.ProducerFenced {
		t.Fatalf("commit by the timed-out producer: %v", e)
	}
}

func TestTxnIDExpiration(t *testing.T) {
	f := &fakeTxnBackend{}
	c := newTestTxnCoordinator(t, f)
	mustInit(t, c, InitProducerIDRequest{TransactionalID: "idle"})
	pid, epoch := mustInit(t, c, InitProducerIDRequest{TransactionalID: "busy"})
	if e := c.AddPartitions("busy", pid, epoch, map[string][]int32{"t": {0}}, 3, 2); e != nil {
		t.Fatal(e)
	}
	c.expireIDs(time.Now().Add(8 * 24 * time.Hour))
	if s := txnState(t, c, "idle"); s.ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("idle id after expiration: %+v", s)
	}
	if s := txnState(t, c, "busy"); s.State != "Ongoing" {
		t.Fatalf("an id with an open transaction expired: %+v", s)
	}
	c2 := newTestTxnCoordinator(t, f)
	if s := txnState(t, c2, "idle"); s.ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("tombstone not replayed: %+v", s)
	}
	if p := f.partitions[0]; p != c.TxnPartitionFor("idle") || p < 0 || p >= 5 {
		t.Fatalf("state record in partition %d", p)
	}
}

func TestListTransactionsFilters(t *testing.T) {
	c := newTestTxnCoordinator(t, &fakeTxnBackend{})
	pa, ea := mustInit(t, c, InitProducerIDRequest{TransactionalID: "app-1"})
	pb, _ := mustInit(t, c, InitProducerIDRequest{TransactionalID: "app-2"})
	if e := c.AddPartitions("app-1", pa, ea, map[string][]int32{"t": {0}}, 3, 2); e != nil {
		t.Fatal(e)
	}
	pattern := "^app-2$"
	for _, tc := range []struct {
		name    string
		req     kmsg.ListTransactionsRequest
		want    []string
		unknown []string
	}{
		{"all", kmsg.ListTransactionsRequest{DurationFilterMillis: -1}, []string{"app-1", "app-2"}, nil},
		{"state", kmsg.ListTransactionsRequest{StateFilters: []string{"Ongoing", "Bogus"}, DurationFilterMillis: -1}, []string{"app-1"}, []string{"Bogus"}},
		{"producer", kmsg.ListTransactionsRequest{ProducerIDFilters: []int64{pb}, DurationFilterMillis: -1}, []string{"app-2"}, nil},
		{"duration", kmsg.ListTransactionsRequest{Version: 1, DurationFilterMillis: time.Hour.Milliseconds()}, nil, nil},
		{"pattern", kmsg.ListTransactionsRequest{Version: 2, DurationFilterMillis: -1, TransactionalIDPattern: &pattern}, []string{"app-2"}, nil},
	} {
		resp := c.ListTransactions(&tc.req)
		var got []string
		for _, s := range resp.TransactionStates {
			got = append(got, s.TransactionalID)
		}
		if !slices.Equal(got, tc.want) || !slices.Equal(resp.UnknownStateFilters, tc.unknown) {
			t.Errorf("%s: %v (unknown %v), want %v (unknown %v)", tc.name, got, resp.UnknownStateFilters, tc.want, tc.unknown)
		}
	}
}

// TestTxnRunAbortsAtTheDeadline runs the timer loop in a synctest bubble:
// a transaction is aborted once its timeout passes, not on the 10 s tick.
func TestTxnRunAbortsAtTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeTxnBackend{}
		c := newTestTxnCoordinator(t, f)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go c.Run(ctx)
		pid, epoch := mustInit(t, c, InitProducerIDRequest{TransactionalID: "tx", Timeout: 1500 * time.Millisecond})
		if e := c.AddPartitions("tx", pid, epoch, map[string][]int32{"t": {0}}, 3, 2); e != nil {
			t.Fatal(e)
		}
		time.Sleep(1400 * time.Millisecond)
		synctest.Wait()
		if got := f.takeMarkers(); len(got) != 0 {
			t.Fatalf("aborted early: %v", got)
		}
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if got := f.takeMarkers(); len(got) != 1 || got[0].commit {
			t.Fatalf("markers after the deadline: %v", got)
		}
		cancel()
	})
}

// A transaction's markers carry the coordinator epoch its
// __transaction_state partition was loaded at (the leader epoch there), so
// that a partition refuses markers of a coordinator since replaced.
func TestTxnMarkersCarryCoordinatorEpoch(t *testing.T) {
	f := &fakeTxnBackend{}
	c, err := NewTxnCoordinator(TxnConfig{NumPartitions: 5, MaxTimeout: time.Minute, OffsetsPartitionFor: func(g string) int32 { return PartitionFor(g, 7) }}, f)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(5) {
		epoch := int32(0)
		if p == c.TxnPartitionFor("tx") {
			epoch = 7
		}
		if err := c.LoadPartition(t.Context(), p, epoch, f.records()); err != nil {
			t.Fatal(err)
		}
	}
	pid, epoch := mustInit(t, c, InitProducerIDRequest{TransactionalID: "tx"})
	if e := c.AddPartitions("tx", pid, epoch, map[string][]int32{"a": {0, 1}}, 3, 2); e != nil {
		t.Fatal(e)
	}
	if e := c.EndTxn(t.Context(), "tx", pid, epoch, true, 3); e != nil {
		t.Fatal(e)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Equal(f.coordEpochs, []int32{7, 7}) {
		t.Fatalf("markers' coordinator epochs %v, want [7 7]", f.coordEpochs)
	}
}
