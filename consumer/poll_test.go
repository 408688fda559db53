package consumer

import (
	"strconv"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestPollAcrossBatches: Poll decodes fetched batches as it needs records.
// Starting and seeking into the middle of batches, with max.poll.records
// smaller than a batch, it returns every record once, in order, at most
// max.poll.records at a time, and records from earlier Polls keep their
// contents while later batches are decoded.
func TestPollAcrossBatches(t *testing.T) {
	const (
		batches   = 5
		perBatch  = 10
		maxPoll   = 7
		start     = 3  // inside the first produced batch
		seekAfter = 14 // after the first Poll, inside the second
	)
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "b"))
	for i := range batches { // one ProduceSync per batch
		produce(t, c, spread("b", 1, i*perBatch, perBatch)...)
	}
	tp := kafkit.TopicPartition{Topic: "b", Partition: 0}
	cons := newConsumer(t, c, func(cfg *Config) { cfg.MaxPollRecords = maxPoll })
	if err := cons.Assign(tp); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 20*time.Second)
	if err := cons.Seek(ctx, tp, start); err != nil {
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
	if first[0].Offset != start {
		t.Fatalf("first record at offset %d, want %d", first[0].Offset, start)
	}
	if err := cons.Seek(ctx, tp, seekAfter); err != nil {
		t.Fatal(err)
	}
	want := int64(seekAfter)
	for want < batches*perBatch {
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
	if pos, err := cons.Position(ctx, tp); err != nil || pos != batches*perBatch {
		t.Errorf("Position = %d, %v; want %d", pos, err, batches*perBatch)
	}
}
