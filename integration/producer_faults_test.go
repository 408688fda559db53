package integration

// Issue 21 against our broker: the producer's failure paths where the
// broker itself produces the condition.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/producer"
)

func txnProducerOn(t *testing.T, addr, txnID string) *producer.Producer {
	t.Helper()
	p, err := producer.New(producer.Config{BootstrapServers: []string{addr}, TransactionalID: txnID})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

// Case 5: our coordinator answers INVALID_TXN_STATE to EndTxn for a
// transaction it never heard of; committing or aborting one in which
// nothing was sent must not make the producer fatal.
func TestProducerFaultsEmptyTransactions(t *testing.T) {
	b := broker.NewTest(t)
	createTopic(t, b.Addr(), "empty-txn", 1)
	p := txnProducerOn(t, b.Addr(), "empty-txn")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, commit := range []bool{true, false, true} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if i == 2 { // no offsets is no offsets: Java sends nothing either
			if err := p.SendOffsetsToTransaction(ctx, nil, kafkit.GroupMetadata{GroupID: "g", GenerationID: -1}); err != nil {
				t.Fatal(err)
			}
		}
		end := p.CommitTransaction
		if !commit {
			end = p.AbortTransaction
		}
		if err := end(ctx); err != nil {
			t.Fatalf("ending an empty transaction (commit=%v): %v", commit, err)
		}
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.SendSync(ctx, &kafkit.Record{Topic: "empty-txn", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := p.CommitTransaction(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kgoConsumeAll(t, b.Addr(), "empty-txn", kgo.ReadCommitted(), 1); len(got) != 1 {
		t.Fatalf("read %v", got)
	}
}

// TestProducerFaultsConsumeTransformProduce runs the exactly-once loop of
// examples/exactly-once over our broker with polls that return nothing
// (their transactions are empty) and one transaction whose offsets carry a
// stale group generation: the coordinator answers ILLEGAL_GENERATION, the
// transaction aborts, the consumer rewinds, and every input is still
// written exactly once for read_committed readers.
func TestProducerFaultsConsumeTransformProduce(t *testing.T) {
	const n = 60
	b := broker.NewTest(t)
	in, out := "ctp-in", "ctp-out"
	createTopic(t, b.Addr(), in, 2)
	createTopic(t, b.Addr(), out, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	plain, err := producer.New(producer.Config{BootstrapServers: []string{b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := plain.SendSync(ctx, &kafkit.Record{Topic: in, Partition: int32(i % 2), Value: []byte(fmt.Sprintf("in-%03d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := plain.Close(ctx); err != nil {
		t.Fatal(err)
	}

	p := txnProducerOn(t, b.Addr(), "ctp")
	c, err := consumer.New(ctx, consumer.Config{BootstrapServers: []string{b.Addr()}, GroupID: "ctp", IsolationLevel: consumer.ReadCommitted,
		DisableAutoCommit: true, AutoOffsetReset: consumer.OffsetResetEarliest, MaxPollRecords: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.Subscribe(in); err != nil {
		t.Fatal(err)
	}

	done, empty, fenced, round := 0, 0, false, 0
	for done < n || empty < 2 {
		if ctx.Err() != nil {
			t.Fatalf("after %d rounds: %d of %d records committed, %d empty polls", round, done, n, empty)
		}
		round++
		pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		records, err := c.Poll(pctx)
		pcancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		if len(records) == 0 {
			empty++
		}
		member := c.GroupMetadata()
		stale := !fenced && len(records) > 0 && done > n/3
		if stale {
			member.GenerationID++ // as if the group rebalanced under us
		}
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		next := map[kafkit.TopicPartition]int64{}
		for _, r := range records {
			o := &kafkit.Record{Topic: out, Partition: kafkit.AnyPartition, Value: []byte(strings.ToUpper(string(r.Value)))}
			if err := p.Send(ctx, o, nil); err != nil {
				t.Fatal(err)
			}
			next[kafkit.TopicPartition{Topic: r.Topic, Partition: r.Partition}] = r.Offset + 1
		}
		err = p.SendOffsetsToTransaction(ctx, next, member)
		if stale {
			if !errors.Is(err, producer.ErrAbortableTransaction) {
				t.Fatalf("offsets with a stale generation: %v, want abortable", err)
			}
			if err := p.CommitTransaction(ctx); !errors.Is(err, producer.ErrAbortableTransaction) {
				t.Fatalf("commit after ILLEGAL_GENERATION: %v, want abortable", err)
			}
			if err := p.AbortTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			fenced = true
			rewindTo(ctx, t, c, records)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := p.CommitTransaction(ctx); err != nil {
			t.Fatalf("round %d (%d records): %v", round, len(records), err)
		}
		done += len(records)
	}
	if !fenced {
		t.Fatal("no transaction ran with a stale generation")
	}
	got := kgoConsumeAll(t, b.Addr(), out, kgo.ReadCommitted(), n)
	seen := map[string]bool{}
	for _, v := range got {
		if seen[v] {
			t.Fatalf("%s written twice", v)
		}
		seen[v] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct outputs, want %d", len(seen), n)
	}
}

// rewindTo seeks the consumer back to the committed offsets of the
// partitions records came from, so an aborted transaction's inputs are
// read again.
func rewindTo(ctx context.Context, t *testing.T, c *consumer.Consumer, records []*kafkit.Record) {
	t.Helper()
	var tps []kafkit.TopicPartition
	for _, r := range records {
		tp := kafkit.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if len(tps) == 0 || tps[len(tps)-1] != tp {
			tps = append(tps, tp)
		}
	}
	committed, err := c.Committed(ctx, tps...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range tps {
		if o, ok := committed[tp]; ok && o >= 0 {
			err = c.Seek(ctx, tp, o)
		} else {
			err = c.SeekToBeginning(ctx, tp)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
