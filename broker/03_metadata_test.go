package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMetadataAutoCreate: the Metadata request that auto-creates a topic is
// answered LEADER_NOT_AVAILABLE without partitions, as Kafka answers when the
// creation completed before the response; the next one finds the topic with
// num.partitions partitions.
// With AllowAutoTopicCreation false (v4+) nothing is created.
func TestMetadataAutoCreate(t *testing.T) {
	b := NewTest(t, WithConfig(func(c *Config) { c.NumPartitions = 2 }))
	c := dial(t, b)
	ask := func(v int16, topic string, allow bool) kmsg.MetadataResponseTopic {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(v)
		req.AllowAutoTopicCreation = allow
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(topic)}}
		return c.roundTrip(req).(*kmsg.MetadataResponse).Topics[0]
	}
	for _, v := range []int16{1, 4, 9, 12} {
		topic := "auto-" + string(rune('a'+v))
		if v >= 4 {
			if got := ask(v, topic, false); got.ErrorCode != kerr.UnknownTopicOrPartition.Code || b.topics.get(topic) != nil {
				t.Fatalf("v%d without auto-creation: error %d, created %v", v, got.ErrorCode, b.topics.get(topic) != nil)
			}
		}
		first := ask(v, topic, true)
		if first.ErrorCode != kerr.LeaderNotAvailable.Code || len(first.Partitions) != 0 {
			t.Fatalf("v%d creating request: error %d, %d partitions", v, first.ErrorCode, len(first.Partitions))
		}
		second := ask(v, topic, true)
		if second.ErrorCode != 0 || len(second.Partitions) != 2 {
			t.Fatalf("v%d next request: error %d, %d partitions", v, second.ErrorCode, len(second.Partitions))
		}
	}
}
