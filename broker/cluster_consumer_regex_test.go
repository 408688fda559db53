package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A KIP-848 member subscribed by regex (the broker resolves it) is given a
// topic created after it joined, through a node other than its
// coordinator: the coordinator resolves the regex against its own node's
// metadata image, which every topic reaches, as Kafka's
// GroupMetadataManager resolves regexes again once the image has new
// topics.
func TestClusterConsumerRegexNewTopic(t *testing.T) {
	c := NewTestCluster(t, 3, WithConfig(func(cfg *Config) { cfg.GroupConsumerHeartbeatIntervalMs = 100 }))
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "orders-a", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("orders-a", 1)
	produce := func(topic string) {
		t.Helper()
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: []byte(topic)}).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
	produce("orders-a")

	ccl := clusterClient(t, c, kgo.ServerSideBalancer(), kgo.ConsumerGroup("rx"), kgo.ConsumeRegex(), kgo.ConsumeTopics("orders-.*"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(100*time.Millisecond), kgo.FetchMaxWait(100*time.Millisecond))
	consume := func(topic string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		for seen := false; !seen; {
			fs := ccl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed nothing from %s; assigned: %v", topic, ccl.GetConsumeTopics())
			}
			fs.EachRecord(func(r *kgo.Record) { seen = seen || r.Topic == topic })
		}
	}
	consume("orders-a")

	coord := c.Leader(offsetsTopic, coordinatorPartition(c, "rx"))
	other := coord%3 + 1
	if err := createTopic(t, nodeClient(t, c.Broker(other)), "orders-b", 1, 3); err != nil {
		t.Fatal(err)
	}
	produce("orders-b")
	consume("orders-b")
}
