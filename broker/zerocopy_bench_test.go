package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// BenchmarkFetchChunks (issue 18): the on-disk fetch path sending 1 MiB per
// Fetch from the segment file, by sendfile (Go's net package) and by the
// copy that platforms without sendfile use, in the same run:
//
//	go test -run '^$' -bench FetchChunks ./broker/
func BenchmarkFetchChunks(b *testing.B) {
	for _, path := range []struct {
		name       string
		copyChunks bool
	}{{"sendfile", false}, {"copy", true}} {
		b.Run(path.name, func(b *testing.B) {
			br := NewTest(b, OnDisk(), WithConfig(func(c *Config) { c.copyChunks = path.copyChunks }))
			tp, err := br.topics.create(createSpec{name: "zc", partitions: 1, replicationFactor: 1})
			if err != nil {
				b.Fatal(err)
			}
			value := make([]byte, 1000)
			for range 64 { // 64 batches of 100 KB
				bl := recordbatch.NewBuilder(recordbatch.Options{}, 0)
				for range 100 {
					bl.Append(time.Now().UnixMilli(), nil, value, nil)
				}
				batch, err := bl.Finish(recordbatch.NoProducer())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tp.partitions[0].log.Append(batch, time.Now(), 0); err != nil {
					b.Fatal(err)
				}
			}
			cl := benchClient(b, br.Addr())
			req := kmsg.NewPtrFetchRequest()
			req.MaxBytes = 1 << 20
			req.Topics = []kmsg.FetchRequestTopic{{Topic: "zc", TopicID: tp.id, Partitions: []kmsg.FetchRequestTopicPartition{{PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1}}}}
			var bytes int64
			for b.Loop() {
				resp, err := req.RequestWith(context.Background(), cl)
				if err != nil {
					b.Fatal(err)
				}
				n := len(resp.Topics[0].Partitions[0].RecordBatches)
				if n < 900_000 {
					b.Fatalf("fetched %d bytes", n)
				}
				bytes += int64(n)
			}
			b.ReportMetric(float64(bytes)/1e6/b.Elapsed().Seconds(), "MB/s")
		})
	}
}
