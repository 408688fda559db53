package consumer

import (
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
// max.poll.records at a time, and records from earlier Polls keep their
// contents while later batches are decoded.
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
