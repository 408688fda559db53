package producer

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
)

func sendN(t *testing.T, p *Producer, topic, prefix string, n int) *acks {
	t.Helper()
	a := newAcks()
	for i := range n {
		if err := a.send(t, p, &kafkit.Record{Topic: topic, Partition: int32(i % 2), Value: []byte(prefix + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func TestTransactionsCommitAndAbort(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "t"))
	p := newProducer(t, c, Config{TransactionalID: "tx-1"})
	ctx := testCtx(t)
	if err := p.Send(ctx, &kafkit.Record{Topic: "t", Value: []byte("x")}, nil); !errors.Is(err, ErrTransactionState) {
		t.Fatalf("Send before InitTransactions: %v", err)
	}
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	for round, commit := range []bool{true, false, true} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		prefix := "c" + strconv.Itoa(round) + "-"
		if !commit {
			prefix = "a" + strconv.Itoa(round) + "-"
		}
		a := sendN(t, p, "t", prefix, 50)
		var err error
		if commit {
			err = p.CommitTransaction(ctx)
		} else {
			err = p.AbortTransaction(ctx)
		}
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		a.wg.Wait()
		for v, err := range a.errs {
			if commit && err != nil {
				t.Fatalf("committed record %s: %v", v, err)
			}
		}
	}
	// read_committed sees the two committed transactions only.
	got := consume(t, c, "t", 100, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if len(got) != 100 {
		t.Fatalf("read %d committed records, want 100", len(got))
	}
	for _, r := range got {
		if r.Value[0] != 'c' {
			t.Fatalf("read aborted record %s", r.Value)
		}
	}
}

func TestTransactionFencing(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "t"))
	ctx := testCtx(t)
	old := newProducer(t, c, Config{TransactionalID: "tx-fence"})
	if err := old.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	sendN(t, old, "t", "old-", 5).wg.Wait()

	// A new instance with the same transactional.id fences the old one.
	fresh := newProducer(t, c, Config{TransactionalID: "tx-fence"})
	if err := fresh.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	err := old.CommitTransaction(ctx)
	if !errors.Is(err, ErrFatal) {
		t.Fatalf("commit of fenced producer: %v, want ErrFatal", err)
	}
	if err := old.Send(ctx, &kafkit.Record{Topic: "t", Value: []byte("x")}, nil); !errors.Is(err, ErrFatal) {
		t.Fatalf("Send after fencing: %v", err)
	}
	if err := fresh.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	sendN(t, fresh, "t", "new-", 10)
	if err := fresh.CommitTransaction(ctx); err != nil {
		t.Fatal(err)
	}
	got := consume(t, c, "t", 10, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	for _, r := range got {
		if string(r.Value[:4]) != "new-" {
			t.Fatalf("read %s from the fenced producer", r.Value)
		}
	}
}

func TestSendOffsetsToTransaction(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "t", "in"))
	ctx := testCtx(t)
	p := newProducer(t, c, Config{TransactionalID: "tx-offsets"})
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	sendN(t, p, "t", "v", 4)
	offsets := map[kafkit.TopicPartition]int64{{Topic: "in", Partition: 0}: 17, {Topic: "in", Partition: 1}: 4}
	if err := p.SendOffsetsToTransaction(ctx, offsets, GroupMetadata{GroupID: "g", GenerationID: -1}); err != nil {
		t.Fatal(err)
	}
	if err := p.CommitTransaction(ctx); err != nil {
		t.Fatal(err)
	}
	// The committed offsets are visible to the group (read with kgo).
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsgOffsetFetch("g", "in")
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32]int64{}
	for _, tp := range resp.Groups[0].Topics {
		for _, pp := range tp.Partitions {
			got[pp.Partition] = pp.Offset
		}
	}
	if got[0] != 17 || got[1] != 4 {
		t.Fatalf("committed offsets %v, want 0:17 1:4", got)
	}
}

func kmsgOffsetFetch(group, topic string) *kmsg.OffsetFetchRequest {
	req := kmsg.NewPtrOffsetFetchRequest()
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = group
	t := kmsg.NewOffsetFetchRequestGroupTopic()
	t.Topic = topic
	t.Partitions = []int32{0, 1}
	g.Topics = append(g.Topics, t)
	req.Groups = append(req.Groups, g)
	return req
}

// TestAbortableTransaction: a record of the transaction fails for good, so
// commit refuses and the transaction must be aborted; the producer then
// continues (under a bumped epoch) with a clean transaction.
func TestAbortableTransaction(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "t"))
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		return errorResponse(req, kerr.InvalidRecord.Code), nil, true // once
	})
	ctx := testCtx(t)
	p := newProducer(t, c, Config{TransactionalID: "tx-abortable"})
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	a := newAcks()
	for i := range 10 {
		// Once the first record failed, Send refuses the rest.
		err := a.send(t, p, &kafkit.Record{Topic: "t", Partition: int32(i % 2), Value: []byte("bad-" + strconv.Itoa(i))})
		if err != nil && !errors.Is(err, ErrAbortableTransaction) {
			t.Fatal(err)
		}
	}
	a.wg.Wait()
	if err := p.CommitTransaction(ctx); !errors.Is(err, ErrAbortableTransaction) || !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("commit after a failed record: %v", err)
	}
	if err := p.Send(ctx, &kafkit.Record{Topic: "t", Value: []byte("x")}, nil); !errors.Is(err, ErrAbortableTransaction) {
		t.Fatalf("Send in an abortable transaction: %v", err)
	}
	if err := p.AbortTransaction(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	b := sendN(t, p, "t", "good-", 10)
	if err := p.CommitTransaction(ctx); err != nil {
		t.Fatal(err)
	}
	b.wg.Wait()
	got := consume(t, c, "t", 10, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	for _, r := range got {
		if string(r.Value[:5]) != "good-" {
			t.Fatalf("read %s", r.Value)
		}
	}
}
