package producer

// Issue 21: an attempt the producer gave up on (its response timed out) may
// still reach the partition later. The randomized fault test once stored a
// record twice that way; these tests replay it step by step.

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
)

// staleAttempt sets up, on partition 0 of topic t of c, the interleaving of
// the randomized test's duplicate: batch A is rejected (INVALID_RECORD) while
// the next batch, B, is on the wire; B's request is then held by the broker
// past the client's request timeout, so the producer resends B on a new
// connection. The held request is processed only when release is closed,
// and woke is closed once it has been (Kafka keeps handling a request it read
// after the client hung up; a slow log append delays it the same way).
//
// The returned function sends A, then B once A is on the wire (so they are
// two batches), and lets A's request through once B is on the wire too.
func staleAttempt(t *testing.T, c *kfake.Cluster, p *Producer, a *acks) (send func(), release, woke chan struct{}) {
	t.Helper()
	holdA := make(chan struct{})
	release, woke = make(chan struct{}), make(chan struct{})
	var n atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		switch n.Add(1) {
		case 1: // A: held until B is on the wire behind it
			c.SleepControl(func() { <-holdA })
		case 2: // B's first attempt
			c.SleepControl(func() { <-release })
			close(woke)
		}
		return nil, nil, false
	})
	produceFault(c, "t", 0, kerr.InvalidRecord) // answers A, the first request handled
	send = func() {
		for i, v := range []string{"A", "B"} {
			if err := a.send(t, p, &kafkit.Record{Topic: "t", Value: []byte(v)}); err != nil {
				t.Fatal(err)
			}
			waitInflight(t, p, kafkit.TopicPartition{Topic: "t"}, i+1)
		}
		close(holdA)
	}
	return send, release, woke
}

// waitInflight waits until n of tp's batches are on the wire.
func waitInflight(t *testing.T, p *Producer, tp kafkit.TopicPartition, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		inflight := 0
		if err := p.snd.call(testCtx(t), func() {
			if pq := p.acc.parts.Load().byTP[tp]; pq != nil {
				inflight = pq.inflight
			}
		}); err != nil {
			t.Fatal(err)
		}
		if inflight == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d batches of %s-%d on the wire, want %d", inflight, tp.Topic, tp.Partition, n)
		}
	}
}

// An idempotent producer whose batch is rejected bumps its epoch and starts
// the partition over (Java's TransactionManager.handleFailedBatch calls
// requestEpochBumpForPartition for a non-transactional producer) instead of
// moving the later batches' sequences down over the gap. Moving them let B's
// held first attempt, which carried the sequence B's resend left next,
// be written after the resend: B stored twice under one epoch. Under the
// new epoch the broker fences the old attempt (INVALID_PRODUCER_EPOCH), and B
// is resent: its old attempt's sequence lay beyond the gap A left, so it
// cannot have been written.
func TestFaultStaleAttemptAfterRejection(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	p := newProducer(t, c, Config{Linger: -1, MaxInFlight: 5, RequestTimeout: time.Second,
		DeliveryTimeout: 20 * time.Second, RetryBackoff: time.Millisecond})
	ctx := testCtx(t)
	if err := p.SendSync(ctx, &kafkit.Record{Topic: "t", Value: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	a := newAcks()
	send, release, woke := staleAttempt(t, c, p, a)
	send()
	a.wg.Wait()
	if !errors.Is(a.errs["A"], kerr.InvalidRecord) {
		t.Fatalf("A: %v, want INVALID_RECORD", a.errs["A"])
	}
	if a.errs["B"] != nil || a.recs["B"].Offset != 1 {
		t.Fatalf("B: %v at offset %d, want stored at 1", a.errs["B"], a.recs["B"].Offset)
	}
	close(release)
	<-woke
	var stored []string
	for _, r := range consumeAll(t, c, "t", kgo.ReadUncommitted()) {
		stored = append(stored, fmt.Sprintf("%s@%d(epoch %d)", r.Value, r.Offset, r.ProducerEpoch))
	}
	t.Logf("stored: %v", stored)
	if len(stored) != 2 {
		t.Fatalf("partition holds %v, want first and B once each", stored)
	}
	if err := p.SendSync(ctx, &kafkit.Record{Topic: "t", Value: []byte("after")}); err != nil {
		t.Fatal(err)
	}
}

// In a transaction the rejected batch's records are moved over, as Java's
// adjustSequencesDueToFailedBatch does: the transaction can only abort. B's
// held attempt then carries the sequence after B's resend. Arriving before
// the abort, it is written into the aborted transaction (as with Java's
// producer: read_committed consumers never see it). Arriving while the next
// transaction writes the partition, it must not be written there: EndTxn v5
// (KIP-890) ended the aborted transaction under a new epoch, which fences it
// (an older coordinator leaves the epoch, and the broker takes it for a
// duplicate of the next transaction's batch at that sequence).
func TestFaultStaleAttemptAfterTransaction(t *testing.T) {
	for _, tc := range []struct {
		name        string
		beforeAbort bool
		stored      string
	}{
		{"before abort", true, "[first B B next]"},
		{"in next transaction", false, "[first B next]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, kfake.SeedTopics(1, "t"))
			p := txnProducer(t, c, Config{Linger: -1, MaxInFlight: 5, RequestTimeout: time.Second,
				DeliveryTimeout: 20 * time.Second, RetryBackoff: time.Millisecond})
			ctx := testCtx(t)
			commitOne(t, p, "t", "first")
			a := newAcks()
			send, release, woke := staleAttempt(t, c, p, a)
			arrive := func() {
				close(release)
				<-woke
			}
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			send()
			a.wg.Wait()
			if err := p.CommitTransaction(ctx); !errors.Is(err, ErrAbortableTransaction) || !errors.Is(err, kerr.InvalidRecord) {
				t.Fatalf("commit: %v, want abortable INVALID_RECORD", err)
			}
			if tc.beforeAbort {
				arrive()
			}
			if err := p.AbortTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := p.SendSync(ctx, &kafkit.Record{Topic: "t", Value: []byte("next")}); err != nil {
				t.Fatal(err)
			}
			if !tc.beforeAbort {
				arrive()
			}
			if err := p.CommitTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			var committed, all []string
			for _, r := range consumeAll(t, c, "t", kgo.ReadCommitted()) {
				committed = append(committed, string(r.Value))
			}
			for _, r := range consumeAll(t, c, "t", kgo.ReadUncommitted()) {
				all = append(all, string(r.Value))
			}
			if fmt.Sprint(committed) != "[first next]" || fmt.Sprint(all) != tc.stored {
				t.Fatalf("committed %v, stored %v; want [first next] committed, %s stored", committed, all, tc.stored)
			}
		})
	}
}

// A transaction's batch whose first attempt was lost and whose retry was
// rejected leaves the partition's sequence unresolved, and settling it makes
// the transaction abortable. A batch queued behind it was then still sent,
// numbered after the gap the broker never saw filled, and retried
// OUT_OF_ORDER_SEQUENCE_NUMBER until delivery.timeout.ms held up the commit.
// As Java's Sender (abortUndrainedBatches), nothing new is sent in a
// transaction that can only abort.
func TestFaultNothingSentAfterTransactionFailed(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	release := make(chan struct{})
	var n atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if n.Add(1) == 1 { // X's first attempt: held until Y is queued, then lost
			c.SleepControl(func() { <-release })
			return nil, errors.New("injected: connection killed"), true
		}
		return nil, nil, false
	})
	produceFault(c, "t", 0, kerr.InvalidRecord) // X's retry
	p := txnProducer(t, c, Config{Linger: -1, MaxInFlight: 1, DeliveryTimeout: 5 * time.Minute,
		RequestTimeout: 5 * time.Second, RetryBackoff: time.Millisecond})
	ctx := testCtx(t)
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	a := newAcks()
	for i, v := range []string{"X", "Y"} {
		if err := a.send(t, p, &kafkit.Record{Topic: "t", Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			waitInflight(t, p, kafkit.TopicPartition{Topic: "t"}, 1)
		}
	}
	close(release)
	if err := p.CommitTransaction(ctx); !errors.Is(err, ErrAbortableTransaction) || !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("commit: %v, want abortable INVALID_RECORD", err)
	}
	a.wg.Wait()
	if !errors.Is(a.errs["X"], ErrUnknownOutcome) {
		t.Fatalf("X: %v, want an unknown outcome", a.errs["X"])
	}
	if !errors.Is(a.errs["Y"], ErrAbortableTransaction) || errors.Is(a.errs["Y"], kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("Y: %v, want dropped by the failed transaction", a.errs["Y"])
	}
	if err := p.AbortTransaction(ctx); err != nil {
		t.Fatal(err)
	}
	commitOne(t, p, "t", "next")
}
