package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// BenchmarkMetricsHooks is what counting costs a Produce and a Fetch of one
// partition: the request counter and latency observations, plus the
// produced (or fetched) partition's counters.
func BenchmarkMetricsHooks(b *testing.B) {
	br := NewTest(b)
	t, err := br.topics.create(createSpec{name: "bench", partitions: 1, replicationFactor: -1})
	if err != nil {
		b.Fatal(err)
	}
	bld := recordbatch.NewBuilder(recordbatch.Options{}, 0)
	for range 100 {
		bld.Append(0, nil, make([]byte, 100), nil)
	}
	batch, err := bld.Finish(recordbatch.NoProducer())
	if err != nil {
		b.Fatal(err)
	}
	resp := kmsg.NewPtrFetchResponse()
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic = "bench"
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.RecordBatches = batch
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	m := br.metrics
	b.Run("produce", func(b *testing.B) {
		for b.Loop() {
			start := time.Now()
			m.produced(t, batch, 0)
			m.request(int16(kmsg.Produce), 9, start)
		}
	})
	b.Run("fetch", func(b *testing.B) {
		for b.Loop() {
			start := time.Now()
			m.fetched(resp, nil)
			m.request(int16(kmsg.Fetch), 12, start)
		}
	})
}
