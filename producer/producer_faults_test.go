package producer

// Fault-injection tests for issue 21: the producer's failure paths as Java's
// Sender, RecordAccumulator and TransactionManager handle them.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
)

// produceFault fails one Produce of topic's partition with code; with
// RequestTimedOut kfake writes the batch and still answers the error, as a
// broker whose replication timed out does.
func produceFault(c *kfake.Cluster, topic string, partition int32, code *kerr.Error) *kfake.FaultHandle {
	return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Partitions: []int32{partition}, Err: code})
}

// endOffset is the log end offset of topic's partition.
func endOffset(t *testing.T, c *kfake.Cluster, topic string, partition int32) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		t.Fatal(err)
	}
	return p.Offset
}

// Case 1: in one request, partition 0 answers REQUEST_TIMED_OUT after
// writing and partition 1 answers INVALID_RECORD. Only partition 1's
// sequences change; partition 0's batch is resent under the same sequence
// and the broker recognizes it, so it is stored once.
func TestFaultRejectedBatchLeavesOtherPartitions(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "t"))
	applied := produceFault(c, "t", 0, kerr.RequestTimedOut)
	rejected := produceFault(c, "t", 1, kerr.InvalidRecord)
	p := newProducer(t, c, Config{Linger: time.Hour, RetryBackoff: time.Millisecond})
	a := newAcks()
	for i, v := range []string{"A", "B"} {
		if err := a.send(t, p, &kafkit.Record{Topic: "t", Partition: int32(i), Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if applied.Hits() != 1 || rejected.Hits() != 1 {
		t.Fatalf("faults hit %d and %d times, want once each", applied.Hits(), rejected.Hits())
	}
	for _, v := range []string{"C", "D"} { // the producer goes on on both
		if err := a.send(t, p, &kafkit.Record{Topic: "t", Partition: 1, Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	a.wg.Wait()
	if a.errs["A"] != nil || a.recs["A"].Offset != 0 {
		t.Fatalf("A: %v at offset %d, want stored at 0", a.errs["A"], a.recs["A"].Offset)
	}
	if !errors.Is(a.errs["B"], kerr.InvalidRecord) {
		t.Fatalf("B: %v, want INVALID_RECORD", a.errs["B"])
	}
	if a.errs["C"] != nil || a.errs["D"] != nil || a.recs["C"].Offset != 0 || a.recs["D"].Offset != 1 {
		t.Fatalf("C, D after the rejected B: %v %v at %d %d", a.errs["C"], a.errs["D"], a.recs["C"].Offset, a.recs["D"].Offset)
	}
	if n := endOffset(t, c, "t", 0); n != 1 {
		t.Fatalf("partition 0 holds %d records, want A once", n)
	}
}

// Case 2: a broker without topic ids (Metadata before v10, Produce before
// v13) lists the response's topics in its own order; each batch gets its
// own topic's answer.
func TestFaultResponseTopicsReordered(t *testing.T) {
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(int16(kmsg.Metadata), 9)
	vs.SetMaxKeyVersion(int16(kmsg.Produce), 8)
	c := newCluster(t, kfake.SeedTopics(1, "a", "b"), kfake.MaxVersions(vs))
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		preq := req.(*kmsg.ProduceRequest)
		if len(preq.Topics) < 2 {
			return nil, nil, false
		}
		resp := preq.ResponseKind().(*kmsg.ProduceResponse)
		for _, name := range []string{"b", "a"} {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = name
			rp := kmsg.NewProduceResponseTopicPartition()
			if name == "b" {
				rp.ErrorCode = kerr.InvalidTimestamp.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	p := newProducer(t, c, Config{Linger: time.Hour})
	for _, topic := range []string{"a", "b"} { // the sender learns both leaders
		if err := p.Send(testCtx(t), &kafkit.Record{Topic: topic, Partition: 0, Value: []byte("warm-up")}, nil); err != nil {
			t.Fatal(err)
		}
		if err := p.Flush(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	a := newAcks()
	for _, topic := range []string{"a", "b"} {
		if err := a.send(t, p, &kafkit.Record{Topic: topic, Partition: 0, Value: []byte(topic)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	a.wg.Wait()
	if a.errs["a"] != nil || !errors.Is(a.errs["b"], kerr.InvalidTimestamp) {
		t.Fatalf("a: %v, b: %v; want a stored, b INVALID_TIMESTAMP", a.errs["a"], a.errs["b"])
	}
}

// txnProducer is an initialized transactional producer.
func txnProducer(t *testing.T, c *kfake.Cluster, cfg Config) *Producer {
	t.Helper()
	if cfg.TransactionalID == "" {
		cfg.TransactionalID = t.Name()
	}
	p := newProducer(t, c, cfg)
	if err := p.InitTransactions(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return p
}

// commitOne runs a transaction of one record to topic and checks it
// commits: the producer is usable.
func commitOne(t *testing.T, p *Producer, topic, value string) {
	t.Helper()
	ctx := testCtx(t)
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.SendSync(ctx, &kafkit.Record{Topic: topic, Partition: 0, Value: []byte(value)}); err != nil {
		t.Fatalf("send %s: %v", value, err)
	}
	if err := p.CommitTransaction(ctx); err != nil {
		t.Fatalf("commit %s: %v", value, err)
	}
}

// Case 3: a Send that waits for metadata while the transaction commits
// must not land in the committed transaction's place afterwards.
func TestFaultSendOverlappingCommit(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	p := txnProducer(t, c, Config{MaxBlock: 20 * time.Second})
	ctx := testCtx(t)
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.SendSync(ctx, &kafkit.Record{Topic: "t", Value: []byte("in")}); err != nil {
		t.Fatal(err)
	}
	late := make(chan error, 1)
	var lateCB error
	cbDone := make(chan struct{})
	go func() {
		late <- p.Send(ctx, &kafkit.Record{Topic: "late", Partition: 0, Value: []byte("late")}, func(_ *kafkit.Record, err error) {
			lateCB = err
			close(cbDone)
		})
	}()
	time.Sleep(100 * time.Millisecond) // let the Send wait for the topic (either order is correct)
	if err := p.CommitTransaction(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "late", 1, 1
	create.Topics = append(create.Topics, ct)
	if _, err := create.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	switch err := <-late; {
	case errors.Is(err, ErrTransactionState):
	case err == nil:
		<-cbDone
		t.Fatalf("Send overlapping the commit was accepted after it (callback: %v)", lateCB)
	default:
		t.Fatalf("late Send: %v, want ErrTransactionState", err)
	}
	if n := endOffset(t, c, "late", 0); n != 0 {
		t.Fatalf("topic late holds %d records", n)
	}
	commitOne(t, p, "t", "next")
}

// Case 4: TxnOffsetCommit answering ILLEGAL_GENERATION (the group moved on)
// makes the transaction abortable: Commit must not commit its outputs
// without its input offsets.
func TestFaultSendOffsetsFailureFailsCommit(t *testing.T) {
	for _, code := range []*kerr.Error{kerr.IllegalGeneration, kerr.UnknownMemberID, kerr.FencedInstanceID, kerr.GroupAuthorizationFailed} {
		t.Run(code.Message, func(t *testing.T) {
			c := newCluster(t, kfake.SeedTopics(1, "t", "in"))
			c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.TxnOffsetCommit}, Err: code})
			p := txnProducer(t, c, Config{})
			ctx := testCtx(t)
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := p.SendSync(ctx, &kafkit.Record{Topic: "t", Value: []byte("out")}); err != nil {
				t.Fatal(err)
			}
			offsets := map[kafkit.TopicPartition]int64{{Topic: "in", Partition: 0}: 5}
			err := p.SendOffsetsToTransaction(ctx, offsets, GroupMetadata{GroupID: "g", GenerationID: 3, MemberID: "m"})
			if !errors.Is(err, ErrAbortableTransaction) || !errors.Is(err, code) {
				t.Fatalf("SendOffsetsToTransaction: %v, want abortable %s", err, code.Message)
			}
			if err := p.CommitTransaction(ctx); !errors.Is(err, ErrAbortableTransaction) {
				t.Fatalf("commit after failed offsets: %v, want ErrAbortableTransaction", err)
			}
			if err := p.AbortTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			commitOne(t, p, "t", "next")
		})
	}
}

// Case 5: a transaction in which nothing was sent commits and aborts
// without EndTxn (the coordinator would answer INVALID_TXN_STATE).
func TestFaultEmptyTransaction(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	var endTxns int
	c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		endTxns++
		return nil, nil, false
	})
	p := txnProducer(t, c, Config{})
	ctx := testCtx(t)
	for _, commit := range []bool{true, false, true} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var err error
		if commit {
			err = p.CommitTransaction(ctx)
		} else {
			err = p.AbortTransaction(ctx)
		}
		if err != nil {
			t.Fatalf("ending an empty transaction (commit=%v): %v", commit, err)
		}
	}
	commitOne(t, p, "t", "x")
	if endTxns != 1 {
		t.Fatalf("%d EndTxn requests, want 1 (for the transaction that sent a record)", endTxns)
	}
}

// Case 6: inside a transaction one batch of a partition is rejected while
// later ones are in flight. Their sequences move down over the gap, so
// they complete at once instead of retrying OUT_OF_ORDER_SEQUENCE_NUMBER
// until delivery.timeout.ms; the transaction aborts and the producer goes
// on.
func TestFaultTxnRejectedBatchClosesGap(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	var produces int
	hold := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if produces++; produces == 1 {
			// Hold the first request until the others are in flight.
			c.SleepControl(func() { <-hold })
			c.DropControl()
			return nil, nil, false
		}
		return nil, nil, false
	})
	rejected := produceFault(c, "t", 0, kerr.InvalidRecord)
	p := txnProducer(t, c, Config{BatchSize: 200, Linger: -1, MaxInFlight: 5, DeliveryTimeout: 4 * time.Second,
		RequestTimeout: 3 * time.Second, RetryBackoff: time.Millisecond})
	ctx := testCtx(t)
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	a := newAcks()
	for i := range 20 {
		if err := a.send(t, p, &kafkit.Record{Topic: "t", Partition: 0, Value: []byte(fmt.Sprintf("%03d-%0100d", i, i))}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(hold)
	err := p.CommitTransaction(ctx)
	if !errors.Is(err, ErrAbortableTransaction) || !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("commit: %v, want abortable INVALID_RECORD", err)
	}
	a.wg.Wait()
	if rejected.Hits() != 1 {
		t.Fatalf("fault hit %d times", rejected.Hits())
	}
	for v, err := range a.errs {
		if errors.Is(err, ErrRecordTimeout) || errors.Is(err, kerr.OutOfOrderSequenceNumber) {
			t.Fatalf("record %.3s: %v", v, err)
		}
	}
	if err := p.AbortTransaction(ctx); err != nil {
		t.Fatal(err)
	}
	commitOne(t, p, "t", "next")
}

// Case 7: INVALID_PRODUCER_EPOCH and INVALID_TXN_STATE on a produce
// response only abort the transaction (KIP-588).
func TestFaultProduceEpochErrorsAbortable(t *testing.T) {
	for _, code := range []*kerr.Error{kerr.InvalidProducerEpoch, kerr.InvalidTxnState} {
		t.Run(code.Message, func(t *testing.T) {
			c := newCluster(t, kfake.SeedTopics(1, "t"))
			produceFault(c, "t", 0, code)
			p := txnProducer(t, c, Config{})
			ctx := testCtx(t)
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := p.SendSync(ctx, &kafkit.Record{Topic: "t", Value: []byte("x")}); !errors.Is(err, code) {
				t.Fatalf("send: %v, want %s", err, code.Message)
			}
			if err := p.CommitTransaction(ctx); !errors.Is(err, ErrAbortableTransaction) || errors.Is(err, ErrFatal) {
				t.Fatalf("commit: %v, want abortable", err)
			}
			if err := p.AbortTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			commitOne(t, p, "t", "next")
		})
	}
}

// Case 9: a batch on the wire expires at delivery.timeout.ms, not when its
// response (or the client's request timeout) comes.
func TestFaultInflightBatchExpiresOnTime(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	p := newProducer(t, c, Config{DeliveryTimeout: 1100 * time.Millisecond, RequestTimeout: time.Second, Linger: -1})
	t.Cleanup(func() { close(release) })
	start := time.Now()
	done := make(chan error, 1)
	if err := p.Send(testCtx(t), &kafkit.Record{Topic: "t", Value: []byte("x")}, func(_ *kafkit.Record, err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	err := <-done
	took := time.Since(start)
	if !errors.Is(err, ErrRecordTimeout) || errors.Is(err, client.ErrRequestTimeout) {
		t.Fatalf("after %v: %v, want ErrRecordTimeout before the request timed out", took, err)
	}
	t.Logf("callback after %v", took)
}

// The producer stays usable while a batch expired on the wire: later
// records go out once its response settles the sequence.
func TestFaultInflightExpiryThenContinue(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	release := make(chan struct{})
	first := true
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if first {
			first = false
			c.SleepControl(func() { <-release })
			return nil, nil, false
		}
		c.KeepControl()
		return nil, nil, false
	})
	p := newProducer(t, c, Config{DeliveryTimeout: 600 * time.Millisecond, RequestTimeout: 500 * time.Millisecond, Linger: -1})
	ctx := testCtx(t)
	if err := p.SendSync(ctx, &kafkit.Record{Topic: "t", Value: []byte("x")}); !errors.Is(err, ErrRecordTimeout) {
		t.Fatalf("held record: %v", err)
	}
	close(release)
	r := &kafkit.Record{Topic: "t", Value: []byte("y")}
	if err := p.SendSync(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n := endOffset(t, c, "t", 0); n != r.Offset+1 || n > 2 {
		t.Fatalf("y at %d, log end %d", r.Offset, n)
	}
}

// Suspected in issue 21: the epoch bump after a transaction that lost its
// sequences names the current producer id and epoch (KIP-360), so the
// coordinator bumps them only if no newer instance took over.
func TestFaultEpochBumpNamesCurrentProducer(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	var inits []*kmsg.InitProducerIDRequest
	c.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		inits = append(inits, req.(*kmsg.InitProducerIDRequest))
		return nil, nil, false
	})
	produceFault(c, "t", 0, kerr.UnknownProducerID)
	p := txnProducer(t, c, Config{})
	ctx := testCtx(t)
	id, epoch, err := p.pidEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.SendSync(ctx, &kafkit.Record{Topic: "t", Value: []byte("x")}); !errors.Is(err, kerr.UnknownProducerID) {
		t.Fatalf("send: %v", err)
	}
	if err := p.AbortTransaction(ctx); err != nil {
		t.Fatal(err)
	}
	// EndTxn v5 (KIP-890) may have bumped the epoch once already.
	if len(inits) != 2 || inits[0].ProducerID != -1 || inits[1].ProducerID != id || inits[1].ProducerEpoch < epoch {
		t.Fatalf("InitProducerId requests %d; the bump named producer %d epoch %d, want %d epoch %d or later", len(inits), inits[len(inits)-1].ProducerID, inits[len(inits)-1].ProducerEpoch, id, epoch)
	}
	commitOne(t, p, "t", "next")
}

// Suspected in issue 21: a Commit whose EndTxn reached the coordinator but
// whose call ended before the answer cannot be followed by an abort (the
// commit may be applied); the commit is retried instead, as in Java.
func TestFaultAbortAfterUnansweredCommit(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.SleepControl(func() { <-release }) // the first EndTxn is applied late
		return nil, nil, false
	})
	p := txnProducer(t, c, Config{})
	ctx := testCtx(t)
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.SendSync(ctx, &kafkit.Record{Topic: "t", Value: []byte("committed")}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := p.CommitTransaction(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("commit: %v, want the deadline", err)
	}
	if err := p.AbortTransaction(ctx); !errors.Is(err, ErrTransactionState) {
		t.Fatalf("abort after an unanswered commit: %v, want ErrTransactionState", err)
	}
	close(release)
	if err := p.CommitTransaction(ctx); err != nil {
		t.Fatalf("retried commit: %v", err)
	}
	commitOne(t, p, "t", "next")
	got := consume(t, c, "t", 2, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if string(got[0].Value) != "committed" {
		t.Fatalf("read %s first", got[0].Value)
	}
}

// Suspected in issue 21: Close while a Commit waits for AddPartitionsToTxn
// ends the Commit instead of leaving it waiting for its ctx.
func TestFaultCloseDuringCommit(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.AddPartitionsToTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	t.Cleanup(func() { close(release) })
	p := txnProducer(t, c, Config{})
	ctx := testCtx(t)
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.Send(ctx, &kafkit.Record{Topic: "t", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	committed := make(chan error, 1)
	go func() { committed <- p.CommitTransaction(ctx) }()
	time.Sleep(100 * time.Millisecond) // let Commit wait
	closeCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	p.Close(closeCtx)
	select {
	case err := <-committed:
		if err == nil {
			t.Fatal("Commit succeeded although its partition was never added")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Commit still waiting after Close returned")
	}
}
