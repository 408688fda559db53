package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchErrorsAnsweredAtOnce: a long poll with a partition error (an
// offset past the end, an unknown topic) is answered at once, as Kafka does,
// not after max wait.
func TestFetchErrorsAnsweredAtOnce(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "fe", 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produceTo(t, cl, "fe", 0, 10)

	c := dial(t, b)
	for _, tc := range []struct {
		topic  string
		offset int64
		want   int16
	}{
		{"fe", 42, kerr.OffsetOutOfRange.Code},
		{"no-such-topic", 0, kerr.UnknownTopicOrPartition.Code},
	} {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(11)
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 10000, 1, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = tc.topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes = tc.offset, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		start := time.Now()
		resp := c.roundTrip(req).(*kmsg.FetchResponse)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s@%d: answered after %v", tc.topic, tc.offset, d)
		}
		if got := resp.Topics[0].Partitions[0].ErrorCode; got != tc.want {
			t.Errorf("%s@%d: error %d, want %d", tc.topic, tc.offset, got, tc.want)
		}
	}
}

// TestFetchAnsweredAtSegmentEnd: a read never spans segments, so a fetch
// whose data goes on in a later segment is answered at once whatever its
// fetch.min.bytes, as Kafka's DelayedFetch completes a fetch on an older
// segment than the high watermark's (its case F); one on the active
// segment still waits for min bytes or max wait. Before, a consumer with a
// large fetch.min.bytes waited max wait for every segment of a backlog
// (kafka-go's TestReaderReadCompactedMessage: 200-byte segments, min and
// max bytes 200, ~30 s to read 150 records).
func TestFetchAnsweredAtSegmentEnd(t *testing.T) {
	for _, inMemory := range []bool{true, false} { // copied reads, zero-copy chunks
		t.Run(map[bool]string{true: "memory", false: "disk"}[inMemory], func(t *testing.T) {
			b := NewTest(t, WithConfig(func(c *Config) { c.InMemory = inMemory }))
			if _, err := b.topics.create(createSpec{name: "seg", partitions: 1, replicationFactor: 1, configs: map[string]string{"segment.bytes": "200"}}); err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			produceTo(t, cl, "seg", 0, 10) // a batch each, two to a segment
			log := b.topics.get("seg").partitions[0].log
			c := dial(t, b)
			fetch := func(offset int64, isolation int8, maxWait int32) (time.Duration, kmsg.FetchResponseTopicPartition) {
				t.Helper()
				req := kmsg.NewPtrFetchRequest()
				req.SetVersion(11)
				req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.IsolationLevel = maxWait, 1<<20, 1<<20, isolation
				rt := kmsg.NewFetchRequestTopic()
				rt.Topic = "seg"
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.FetchOffset, rp.PartitionMaxBytes = offset, 1<<20
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				start := time.Now()
				resp := c.roundTrip(req).(*kmsg.FetchResponse)
				return time.Since(start), resp.Topics[0].Partitions[0]
			}
			for _, isolation := range []int8{0, 1} {
				d, sp := fetch(0, isolation, 8000)
				if d > 4*time.Second {
					t.Errorf("isolation %d: a fetch from the first of several segments answered after %v", isolation, d)
				}
				if sp.ErrorCode != 0 || len(sp.RecordBatches) == 0 {
					t.Errorf("isolation %d: error %d, %d bytes", isolation, sp.ErrorCode, len(sp.RecordBatches))
				}
				// The read stopped at the first segment's end.
				var rb kmsg.RecordBatch
				for raw := sp.RecordBatches; len(raw) > 0; raw = raw[12+rb.Length:] {
					if err := rb.ReadFrom(raw); err != nil {
						t.Fatal(err)
					}
				}
				if last := rb.FirstOffset + int64(rb.LastOffsetDelta); last >= log.EndOffset()-1 {
					t.Fatalf("isolation %d: one read returned every record (to offset %d): the log has one segment", isolation, last)
				}
			}
			// On the active segment there is nothing more to read at once:
			// the fetch waits out max wait.
			if d, sp := fetch(log.EndOffset()-1, 0, 300); d < 250*time.Millisecond || sp.ErrorCode != 0 || len(sp.RecordBatches) == 0 {
				t.Errorf("a fetch on the active segment answered after %v (error %d, %d bytes), want max wait", d, sp.ErrorCode, len(sp.RecordBatches))
			}
		})
	}
}
