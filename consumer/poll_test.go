package consumer

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPollAcrossBatches: Poll decodes fetched batches as it needs records.
// Starting and seeking into the middle of batches, with max.poll.records
// smaller than a batch, it returns every record once, in order, at most
// max.poll.records at a time, in an array no larger, and records from
// earlier Polls keep their contents while later batches are decoded.
func TestPollAcrossBatches(t *testing.T) {
	testPollAcrossBatches(t, 5, 10, 7, 3, 14)
}

// TestPollAcrossChunks: batches larger than decodeChunk are decoded a chunk
// at a time; starting and seeking into later chunks of a batch, Poll still
// returns every record once, in order.
func TestPollAcrossChunks(t *testing.T) {
	per := 2*decodeChunk + decodeChunk/2
	testPollAcrossBatches(t, 2, per, 700, decodeChunk+3, per+2*decodeChunk+7)
}

// testPollAcrossBatches produces batches of perBatch records (one produce
// request each, so one batch each), seeks to start, polls once, seeks to
// seekAfter and reads the rest, maxPoll records per Poll at most.
func testPollAcrossBatches(t *testing.T, batches, perBatch, maxPoll, start, seekAfter int) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "b"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(time.Second)) // each ProduceSync one batch
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range batches {
		if err := cl.ProduceSync(testCtx(t, 30*time.Second), spread("b", 1, i*perBatch, perBatch)...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	tp := kafkit.TopicPartition{Topic: "b", Partition: 0}
	cons := newConsumer(t, c, func(cfg *Config) { cfg.MaxPollRecords = maxPoll })
	if err := cons.Assign(tp); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 20*time.Second)
	if err := cons.Seek(ctx, tp, int64(start)); err != nil {
		t.Fatal(err)
	}

	var kept []*kafkit.Record
	poll := func() []*kafkit.Record {
		t.Helper()
		recs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > maxPoll {
			t.Fatalf("Poll returned %d records, max.poll.records is %d", len(recs), maxPoll)
		}
		if cap(recs) != len(recs) { // an array the application keeps with its records
			t.Fatalf("Poll returned %d records in an array of %d", len(recs), cap(recs))
		}
		kept = append(kept, recs...)
		return recs
	}
	first := poll()
	if first[0].Offset != int64(start) {
		t.Fatalf("first record at offset %d, want %d", first[0].Offset, start)
	}
	if err := cons.Seek(ctx, tp, int64(seekAfter)); err != nil {
		t.Fatal(err)
	}
	want := int64(seekAfter)
	for want < int64(batches*perBatch) {
		for _, r := range poll() {
			if r.Offset != want {
				t.Fatalf("record at offset %d, want %d", r.Offset, want)
			}
			want++
		}
	}
	for _, r := range kept {
		if got := string(r.Value); got != strconv.FormatInt(r.Offset, 10) {
			t.Errorf("record at offset %d has value %q after later Polls", r.Offset, got)
		}
	}
	if pos, err := cons.Position(ctx, tp); err != nil || pos != int64(batches*perBatch) {
		t.Errorf("Position = %d, %v; want %d", pos, err, batches*perBatch)
	}
}

// TestPollPassesOverChunkStillDecoding: Poll returns what one partition
// holds decoded at once, even while another partition's next chunk is still
// being decoded; with nothing decoded it waits for that chunk without
// holding the consumer's lock (which the fetcher needs to hand over the
// next responses meanwhile).
func TestPollPassesOverChunkStillDecoding(t *testing.T) {
	p0, p1 := kafkit.TopicPartition{Topic: "t", Partition: 0}, kafkit.TopicPartition{Topic: "t", Partition: 1}
	job := &decodeJob{done: make(chan struct{}), count: 1}
	c := &Consumer{
		cfg:       Config{}.withDefaults(),
		wake:      make(chan struct{}, 1),
		fetchWake: make(chan struct{}, 1),
		parts: map[kafkit.TopicPartition]*partState{
			p0: {position: 0, fetchOffset: 1, epoch: -1, ahead: job},
			p1: {position: 5, fetchOffset: 6, epoch: -1, buf: []kafkit.Record{{Topic: "t", Partition: 1, Offset: 5}}},
		},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	defer c.cancel()
	ctx := testCtx(t, 10*time.Second)
	type polled struct {
		recs []*kafkit.Record
		err  error
	}
	poll := func() chan polled {
		done := make(chan polled, 1)
		go func() {
			recs, err := c.Poll(ctx)
			done <- polled{recs, err}
		}()
		return done
	}
	select {
	case p := <-poll():
		if p.err != nil || len(p.recs) != 1 || p.recs[0].Partition != 1 {
			t.Fatalf("first Poll: %v, %v; want p1's record", p.recs, p.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Poll waited for p0's chunk while p1 held a record")
	}

	done := poll()
	for waiting := false; !waiting; {
		select {
		case p := <-done:
			t.Fatalf("Poll returned %v, %v before p0's chunk was decoded", p.recs, p.err)
		case <-ctx.Done():
			t.Fatal("Poll never waited, or held the consumer's lock while waiting")
		case <-time.After(time.Millisecond):
		}
		if !c.mu.TryLock() { // the waiting Poll must not hold it
			continue
		}
		waiting = c.polling
		c.mu.Unlock()
	}
	job.records = []kafkit.Record{{Topic: "t", Partition: 0, Offset: 0}}
	close(job.done)
	p := <-done
	if p.err != nil || len(p.recs) != 1 || p.recs[0].Partition != 0 || p.recs[0].Offset != 0 {
		t.Fatalf("second Poll: %v, %v; want p0's record at offset 0", p.recs, p.err)
	}
}
