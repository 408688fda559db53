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
