package share

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

var lim = Limits{Lock: 30 * time.Second, DeliveryLimit: 5, MaxLocks: 10}

func accept(first, last int64) []AckBatch {
	return []AckBatch{{First: first, Last: last, Types: []AckType{AckAccept}}}
}

func TestPartitionAcquireAcknowledgeAdvances(t *testing.T) {
	now := time.Unix(1000, 0)
	p := NewPartition(0)
	got := p.Acquire("a", 0, 4, 100, now, lim)
	if want := []Range{{0, 3, 1}}; !slices.Equal(got, want) {
		t.Fatalf("acquired %v, want %v", got, want)
	}
	// Another member finds nothing left below the end of the log read.
	if got := p.Acquire("b", 0, 4, 100, now, lim); len(got) != 0 {
		t.Fatalf("b acquired %v of records a holds", got)
	}
	if _, e := p.Acknowledge("b", accept(0, 0), now, lim); e != kerr.InvalidRecordState {
		t.Fatalf("b acknowledging a's record: %v, want INVALID_RECORD_STATE", e)
	}
	if _, e := p.Acknowledge("a", []AckBatch{{First: 0, Last: 3, Types: []AckType{AckAccept, AckReject, AckRelease, AckAccept}}}, now, lim); e != nil {
		t.Fatal(e)
	}
	// 0 and 1 are done, 2 is available again: the SPSO stops at 2.
	if p.Start() != 2 || p.End() != 4 {
		t.Fatalf("SPSO %d SPEO %d, want 2 and 4", p.Start(), p.End())
	}
	if got := p.Acquire("b", 0, 4, 100, now, lim); !slices.Equal(got, []Range{{2, 2, 2}}) {
		t.Fatalf("redelivery %v, want offset 2 with delivery count 2", got)
	}
	if _, e := p.Acknowledge("b", accept(2, 2), now, lim); e != nil {
		t.Fatal(e)
	}
	if p.Start() != 4 || p.InFlight() != 0 {
		t.Fatalf("SPSO %d in flight %d, want 4 and 0", p.Start(), p.InFlight())
	}
}

func TestPartitionLockExpiryRedelivers(t *testing.T) {
	now := time.Unix(1000, 0)
	p := NewPartition(5)
	p.Acquire("a", 5, 7, 100, now, lim)
	if released, _ := p.Expire(now.Add(lim.Lock-time.Millisecond), lim); released {
		t.Fatal("released before the lock ended")
	}
	if released, _ := p.Expire(now.Add(lim.Lock), lim); !released {
		t.Fatal("not released when the lock ended")
	}
	// The expired holder may no longer acknowledge them.
	if _, e := p.Acknowledge("a", accept(5, 6), now, lim); e != kerr.InvalidRecordState {
		t.Fatalf("acknowledging after expiry: %v", e)
	}
	if got := p.Acquire("b", 5, 7, 100, now, lim); !slices.Equal(got, []Range{{5, 6, 2}}) {
		t.Fatalf("got %v", got)
	}
}

func TestPartitionDeliveryLimitArchives(t *testing.T) {
	now := time.Unix(1000, 0)
	p := NewPartition(0)
	for i := int16(1); i <= lim.DeliveryLimit; i++ {
		got := p.Acquire("a", 0, 1, 100, now, lim)
		if !slices.Equal(got, []Range{{0, 0, i}}) {
			t.Fatalf("delivery %d: %v", i, got)
		}
		p.Acknowledge("a", []AckBatch{{First: 0, Last: 0, Types: []AckType{AckRelease}}}, now, lim)
	}
	if p.Start() != 1 {
		t.Fatalf("SPSO %d: the poison record was not archived after %d deliveries", p.Start(), lim.DeliveryLimit)
	}
	if got := p.Acquire("a", 0, 1, 100, now, lim); len(got) != 0 {
		t.Fatalf("archived record delivered again: %v", got)
	}
}

func TestPartitionMaxRecordLocks(t *testing.T) {
	now := time.Unix(1000, 0)
	p := NewPartition(0)
	if got := p.Acquire("a", 0, 100, 100, now, lim); !slices.Equal(got, []Range{{0, 9, 1}}) {
		t.Fatalf("got %v, want the %d records the window allows", got, lim.MaxLocks)
	}
	if _, ok := p.NextAcquirable(100, lim); ok {
		t.Fatal("the window is full, yet NextAcquirable offers more")
	}
	p.Acknowledge("a", accept(0, 4), now, lim)
	if got := p.Acquire("b", 0, 100, 100, now, lim); !slices.Equal(got, []Range{{10, 14, 1}}) {
		t.Fatalf("got %v after 5 accepted", got)
	}
}

func TestPartitionAcknowledgeIsAllOrNothing(t *testing.T) {
	now := time.Unix(1000, 0)
	p := NewPartition(0)
	p.Acquire("a", 0, 3, 100, now, lim)
	// The second batch names offset 3, never acquired: nothing applies.
	_, e := p.Acknowledge("a", []AckBatch{{First: 0, Last: 1, Types: []AckType{AckAccept}}, {First: 2, Last: 3, Types: []AckType{AckAccept}}}, now, lim)
	if e != kerr.InvalidRecordState {
		t.Fatalf("got %v", e)
	}
	if p.Start() != 0 || p.InFlight() != 3 {
		t.Fatalf("a failed acknowledgement changed state: SPSO %d in flight %d", p.Start(), p.InFlight())
	}
	if _, e := p.Acknowledge("a", []AckBatch{{First: 0, Last: 2, Types: []AckType{AckAccept, AckAccept}}}, now, lim); e != kerr.InvalidRequest {
		t.Fatalf("types that match neither one nor every offset: %v", e)
	}
}

func TestPartitionSnapshotRestore(t *testing.T) {
	now := time.Unix(1000, 0)
	p := NewPartition(10)
	p.Acquire("a", 10, 16, 100, now, lim)
	p.Acknowledge("a", []AckBatch{{First: 11, Last: 13, Types: []AckType{AckAccept, AckReject, AckRelease}}}, now, lim)
	start, batches := p.Snapshot()
	q := Restore(start, batches)
	// 10, 14, 15 were acquired once and 13 released: all come back
	// available with one delivery; 11 and 12 stay done.
	got := q.Acquire("b", 10, 16, 100, now, lim)
	if want := []Range{{10, 10, 2}, {13, 15, 2}}; !slices.Equal(got, want) {
		t.Fatalf("after restore acquired %v, want %v", got, want)
	}
	if q.Start() != 10 {
		t.Fatalf("SPSO %d", q.Start())
	}
}

func TestPartitionMoveStart(t *testing.T) {
	now := time.Unix(1000, 0)
	p := NewPartition(0)
	p.Acquire("a", 0, 5, 100, now, lim)
	p.MoveStart(3)
	if p.Start() != 3 || p.End() != 5 {
		t.Fatalf("SPSO %d SPEO %d", p.Start(), p.End())
	}
	if _, e := p.Acknowledge("a", accept(3, 4), now, lim); e != nil || p.Start() != 5 {
		t.Fatalf("%v, SPSO %d", e, p.Start())
	}
}

// TestPartitionStatsCountWhy: each release is counted by its reason, and
// as archived instead at the delivery limit; accepted records by the
// delivery count they were accepted at.
func TestPartitionStatsCountWhy(t *testing.T) {
	now := time.Unix(1000, 0)
	lim := Limits{Lock: time.Second, DeliveryLimit: 2, MaxLocks: 10}
	var st Stats
	p := NewPartition(0)
	p.stats = &st
	p.Acquire("a", 0, 6, 100, now, lim)
	if _, e := p.Acknowledge("a", []AckBatch{{First: 0, Last: 1, Types: []AckType{AckAccept, AckRelease}}}, now, lim); e != nil {
		t.Fatal(e)
	}
	p.Expire(now.Add(time.Second), lim)                  // 2..5: lock_timeout
	p.Acquire("b", 0, 6, 3, now.Add(time.Second), lim)   // 1..3, second delivery
	p.ReleaseMember("b", lim, ReleaseConnClosed)         // 1..3: archived, at the limit
	p.Acquire("c", 0, 6, 100, now.Add(time.Second), lim) // 4, 5, second delivery
	if _, e := p.Acknowledge("c", accept(4, 5), now.Add(time.Second), lim); e != nil {
		t.Fatal(e)
	}
	check := func(what string, got *atomic.Uint64, want uint64) {
		t.Helper()
		if n := got.Load(); n != want {
			t.Errorf("%s: %d, want %d", what, n, want)
		}
	}
	check("released by RELEASE", &st.Released[ReleaseAck], 1)
	check("released by lock timeout", &st.Released[ReleaseLockTimeout], 4)
	check("released by the connection closing", &st.Released[ReleaseConnClosed], 0)
	check("archived with the connection closing", &st.Archived[ReleaseConnClosed], 3)
	check("accepted at the first delivery", &st.Accepted[1], 1)
	check("accepted at the second delivery", &st.Accepted[2], 2)
	if p.Start() != 6 {
		t.Errorf("SPSO %d, want 6", p.Start())
	}
}
