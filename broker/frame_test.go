package broker

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// TestZeroCopyFetch: on disk, fetch data is spliced from the segment files
// into the kmsg-encoded response; every version's response must decode to
// exactly the stored batches, for several partitions at once, whether the
// chunks go by sendfile or by the copy the platforms without it use.
func TestZeroCopyFetch(t *testing.T) {
	for _, copyChunks := range []bool{false, true} {
		path := "sendfile through Go's net package (" + runtime.GOOS + ")"
		if copyChunks {
			path = "copy fallback, forced"
		}
		t.Run(path, func(t *testing.T) {
			t.Logf("fetch data path: %s", path)
			testZeroCopyFetch(t, NewTest(t, OnDisk(), WithConfig(func(c *Config) { c.copyChunks = copyChunks })))
		})
	}
}

func testZeroCopyFetch(t *testing.T, b *Broker) {
	tp, err := b.topics.create(createSpec{name: "zc", partitions: 3, replicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	for p := range 3 {
		for i := range 4 {
			bl := recordbatch.NewBuilder(recordbatch.Options{}, 0)
			for j := range 10 {
				bl.Append(time.Now().UnixMilli(), nil, fmt.Appendf(nil, "p%d-b%d-r%d", p, i, j), nil)
			}
			batch, err := bl.Finish(recordbatch.NoProducer())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tp.partitions[p].log.Append(batch, time.Now(), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := dial(t, b)
	for _, v := range []int16{4, 11, 12, 13, 16} {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(v)
		req.MaxBytes = 1 << 20
		rt := kmsg.FetchRequestTopic{Topic: "zc", TopicID: tp.id}
		for p := range int32(3) {
			rt.Partitions = append(rt.Partitions, kmsg.FetchRequestTopicPartition{Partition: p, FetchOffset: int64(p) * 10, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1})
		}
		req.Topics = []kmsg.FetchRequestTopic{rt}
		resp := c.roundTrip(req).(*kmsg.FetchResponse)
		for p, sp := range resp.Topics[0].Partitions {
			want, err := tp.partitions[p].log.Read(int64(p)*10, 1<<20, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if sp.ErrorCode != 0 || !bytes.Equal(sp.RecordBatches, want) {
				t.Fatalf("v%d partition %d: code %d, %d bytes, want the %d stored", v, p, sp.ErrorCode, len(sp.RecordBatches), len(want))
			}
		}
	}
}

// TestFetchRecordsNeverNull: partitions without data carry empty records,
// not null, as Kafka's MemoryRecords.EMPTY (kafka-python fails on null),
// in memory and on disk.
func TestFetchRecordsNeverNull(t *testing.T) {
	for _, opts := range [][]TestOption{nil, {OnDisk()}} {
		b := NewTest(t, opts...)
		if _, err := b.topics.create(createSpec{name: "empty", partitions: 1, replicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
		c := dial(t, b)
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(11)
		req.MaxBytes = 1 << 20
		req.Topics = []kmsg.FetchRequestTopic{
			{Topic: "empty", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}}},
			{Topic: "missing", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}}},
		}
		resp := c.roundTrip(req).(*kmsg.FetchResponse)
		for _, rt := range resp.Topics {
			if p := rt.Partitions[0]; p.RecordBatches == nil {
				t.Errorf("%s: null records (error code %d)", rt.Topic, p.ErrorCode)
			}
		}
	}
}
