package consumer

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/broker"
)

// cluster is what the tests need of a Kafka: its addresses. kfake's
// *Cluster has it; kafkitCluster adapts our broker.
type cluster interface{ ListenAddrs() []string }

type kafkitCluster struct{ b *broker.Broker }

func (k kafkitCluster) ListenAddrs() []string { return []string{k.b.Addr()} }

// onBoth runs fn against kfake (3 brokers) and our broker, each with the
// topics created with the given partition count, so the group behaviour is
// checked against a broker we did not write and the one we did.
func onBoth(t *testing.T, partitions int32, topics []string, fn func(t *testing.T, c cluster)) {
	t.Run("kfake", func(t *testing.T) { fn(t, newCluster(t, kfake.SeedTopics(partitions, topics...))) })
	t.Run("kafkit", func(t *testing.T) {
		b := broker.NewTest(t, broker.WithConfig(func(c *broker.Config) { c.GroupMinSessionTimeoutMs = 100 }))
		createTopics(t, kafkitCluster{b}, partitions, topics...)
		fn(t, kafkitCluster{b})
	})
}

// createTopics creates topics with kgo, failing on any error but
// TOPIC_ALREADY_EXISTS.
func createTopics(t *testing.T, c cluster, partitions int32, topics ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(testCtx(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && err != kerr.TopicAlreadyExists {
			t.Fatalf("creating %s: %v", rt.Topic, err)
		}
	}
}
