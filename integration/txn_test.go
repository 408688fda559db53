package integration

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/producer"
)

// kgoConsumeAll reads topic from the start at the given isolation level
// until no record arrives for idle, and returns the values in order per
// partition, concatenated partition by partition.
func kgoConsumeAll(t *testing.T, addr, topic string, level kgo.IsolationLevel, want int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(level),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	quiet := 0
	for len(out) < want || quiet < 3 {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := cl.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records, want %d", len(out), want)
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)); n++ })
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
			}
		}
		if n == 0 && len(out) >= want {
			quiet++
		}
	}
	return out
}

// TestKgoTransactions drives franz-go's transactional client against the
// broker: a committed and an aborted transaction, read back at both
// isolation levels, then DescribeProducers/DescribeTransactions/
// ListTransactions through kadm.
func TestKgoTransactions(t *testing.T) {
	b := broker.NewTest(t)
	createTopic(t, b.Addr(), "kgo-txn", 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID("kgo-tx"), kgo.DefaultProduceTopic("kgo-txn"),
		kgo.TransactionTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produce := func(prefix string, n int, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			r := &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(prefix + strconv.Itoa(i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("EndTransaction(%v): %v", commit, err)
		}
	}
	produce("c", 20, kgo.TryCommit)
	produce("a", 7, kgo.TryAbort)
	produce("d", 5, kgo.TryCommit)

	committed := kgoConsumeAll(t, b.Addr(), "kgo-txn", kgo.ReadCommitted(), 25)
	if len(committed) != 25 {
		t.Fatalf("read_committed saw %d records, want 25: %v", len(committed), committed)
	}
	for _, v := range committed {
		if v[0] == 'a' {
			t.Fatalf("read_committed saw aborted record %q", v)
		}
	}
	if all := kgoConsumeAll(t, b.Addr(), "kgo-txn", kgo.ReadUncommitted(), 32); len(all) != 32 {
		t.Fatalf("read_uncommitted saw %d records, want 32 (markers skipped)", len(all))
	}

	dreq := kmsg.NewPtrDescribeTransactionsRequest()
	dreq.TransactionalIDs = []string{"kgo-tx", "nobody"}
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(dresp.TransactionStates) != 2 {
		t.Fatalf("DescribeTransactions: %+v", dresp)
	}
	d, unknown := dresp.TransactionStates[0], dresp.TransactionStates[1]
	if d.ErrorCode != 0 || d.State != "CompleteCommit" || d.ProducerID < 0 || d.TimeoutMillis != 10000 {
		t.Fatalf("DescribeTransactions(kgo-tx): %+v", d)
	}
	if unknown.ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("DescribeTransactions(nobody): %+v", unknown)
	}
	for state, want := range map[string]int{"CompleteCommit": 1, "Ongoing": 0} {
		lreq := kmsg.NewPtrListTransactionsRequest()
		lreq.StateFilters = []string{state}
		lresp, err := lreq.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if len(lresp.TransactionStates) != want || (want == 1 && lresp.TransactionStates[0].ProducerID != d.ProducerID) {
			t.Fatalf("ListTransactions(%s): %+v", state, lresp.TransactionStates)
		}
	}
	preq := kmsg.NewPtrDescribeProducersRequest()
	preq.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "kgo-txn", Partitions: []int32{0, 1}}}
	presp, err := preq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range presp.Topics[0].Partitions {
		if p.ErrorCode != 0 || len(p.ActiveProducers) != 1 || p.ActiveProducers[0].ProducerID != d.ProducerID || p.ActiveProducers[0].CurrentTxnStartOffset != -1 {
			t.Fatalf("DescribeProducers partition %d: %+v", p.Partition, p)
		}
	}
}

// TestKgoGroupTransactSession runs franz-go's exactly-once helper (a group
// consumer whose offsets are committed in the producer's transactions) over
// the broker, aborting one transaction on the way, and checks that the
// output holds every input exactly once.
func TestKgoGroupTransactSession(t *testing.T) {
	b := broker.NewTest(t)
	const n = 200
	createTopic(t, b.Addr(), "eos-in", 2)
	createTopic(t, b.Addr(), "eos-out", 2)
	produceSeq(t, b.Addr(), "eos-in", 0, n)
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID("eos-tx"),
		kgo.ConsumerGroup("eos-group"), kgo.ConsumeTopics("eos-in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic("eos-out"),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.TransactionTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	committed, aborted := 0, false
	for committed < n {
		fs := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("committed %d of %d before the deadline", committed, n)
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Partition: r.Partition, Value: append([]byte("out-"), r.Value...)}, nil)
		})
		// Abort the first batch: its inputs must be processed again.
		commit := kgo.TransactionEndTry(aborted)
		ok, err := sess.End(ctx, commit)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			committed += fs.NumRecords()
		}
		aborted = true
	}
	out := kgoConsumeAll(t, b.Addr(), "eos-out", kgo.ReadCommitted(), n)
	seen := map[string]int{}
	for _, v := range out {
		seen[v]++
	}
	for i := range n {
		if c := seen["out-"+strconv.Itoa(i)]; c != 1 {
			t.Errorf("input %d is %d times in the committed output", i, c)
		}
	}
	if len(out) != n {
		t.Fatalf("committed output: %d records, want %d", len(out), n)
	}
}

// TestKafkitTransactions runs kafkit's own transactional producer and
// read_committed consumer against the broker: committed and aborted
// transactions with offsets sent to the transaction, read at both
// isolation levels.
func TestKafkitTransactions(t *testing.T) {
	b := broker.NewTest(t)
	createTopic(t, b.Addr(), "sdk-txn", 2)
	createTopic(t, b.Addr(), "sdk-src", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	servers := []string{b.Addr()}
	p, err := producer.New(producer.Config{BootstrapServers: servers, TransactionalID: "sdk-tx"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	src := kafkit.TopicPartition{Topic: "sdk-src", Partition: 0}
	for round, commit := range []bool{true, false, true} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			v := fmt.Sprintf("r%d-%d-%v", round, i, commit)
			if err := p.Send(ctx, &kafkit.Record{Topic: "sdk-txn", Partition: int32(i % 2), Value: []byte(v)}, nil); err != nil {
				t.Fatal(err)
			}
		}
		offsets := map[kafkit.TopicPartition]int64{src: int64(100 + round)}
		if err := p.SendOffsetsToTransaction(ctx, offsets, producer.GroupMetadata{GroupID: "sdk-group", GenerationID: -1}); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = p.CommitTransaction(ctx)
		} else if err = p.Flush(ctx); err == nil {
			// Flushed first, so the aborted records are in the log.
			err = p.AbortTransaction(ctx)
		}
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}

	read := func(level string, want int) []string {
		t.Helper()
		c, err := consumer.New(ctx, consumer.Config{BootstrapServers: servers, IsolationLevel: level, AutoOffsetReset: consumer.OffsetResetEarliest})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		if err := c.Assign(kafkit.TopicPartition{Topic: "sdk-txn", Partition: 0}, kafkit.TopicPartition{Topic: "sdk-txn", Partition: 1}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for len(got) < want {
			recs, err := c.Poll(ctx)
			if err != nil {
				t.Fatalf("%s after %d records %v: %v", level, len(got), got, err)
			}
			for _, r := range recs {
				got = append(got, string(r.Value))
			}
		}
		return got
	}
	for _, v := range read(consumer.ReadCommitted, 20) {
		if strings.HasSuffix(v, "false") {
			t.Fatalf("read_committed returned aborted record %s", v)
		}
	}
	if got := read(consumer.ReadUncommitted, 30); len(got) != 30 {
		t.Fatalf("read_uncommitted: %d records", len(got))
	}
	c, err := consumer.New(ctx, consumer.Config{BootstrapServers: servers, GroupID: "sdk-group"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	committed, err := c.Committed(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if committed[src] != 102 {
		t.Fatalf("group offset %d, want 102 (the aborted round's 101 never applies)", committed[src])
	}
}
