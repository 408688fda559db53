package consumer

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kafkit/kafkit/broker"
)

// consumerProtocol is a cluster whose consumers use group.protocol=consumer
// (KIP-848): newConsumer switches every consumer of a group test to it.
type consumerProtocol struct{ cluster }

// onConsumerProtocol turns a test's config into a consumer-protocol one:
// the broker decides the session timeout, heartbeat interval and
// assignment, so those keys must not be set.
func onConsumerProtocol(cfg *Config) {
	cfg.GroupProtocol = GroupProtocolConsumer
	cfg.SessionTimeout, cfg.HeartbeatInterval, cfg.PartitionAssignmentStrategy = 0, 0, nil
}

// consumerGroupConfigs make KIP-848 members heartbeat every 100 ms and
// expire after 2 s without one, on both brokers.
var consumerGroupConfigs = map[string]string{
	"group.consumer.heartbeat.interval.ms": "100",
	"group.consumer.session.timeout.ms":    "2000",
}

// onBoth848 runs a group test with group.protocol=consumer against kfake
// and our broker.
func onBoth848(t *testing.T, partitions int32, topics []string, fn func(t *testing.T, c cluster)) {
	t.Run("kfake", func(t *testing.T) {
		fn(t, consumerProtocol{newCluster(t, kfake.SeedTopics(partitions, topics...), kfake.BrokerConfigs(consumerGroupConfigs))})
	})
	t.Run("kafkit", func(t *testing.T) {
		b := broker.NewTest(t, broker.WithConfig(func(c *broker.Config) {
			if err := c.Set(consumerGroupConfigs); err != nil {
				t.Fatal(err)
			}
		}))
		createTopics(t, kafkitCluster{b}, partitions, topics...)
		fn(t, consumerProtocol{kafkitCluster{b}})
	})
}

// TestGroupTestsOnConsumerProtocol runs the consumer's group tests with
// group.protocol=consumer: exactly-once processing across three members,
// a member joining with only the surplus partitions moving (no
// stop-the-world rebalance), and a killed member's partitions redelivered
// from its last commit.
func TestGroupTestsOnConsumerProtocol(t *testing.T) {
	t.Run("ThreeMembersExactlyOnce", func(t *testing.T) {
		onBoth848(t, 12, []string{"orders"}, testGroupThreeMembersExactlyOnce)
	})
	t.Run("AddMemberMovesOnlyItsShare", func(t *testing.T) {
		onBoth848(t, 12, []string{"sticky"}, testCooperativeStickyAddMember)
	})
	t.Run("KilledMemberRedelivers", func(t *testing.T) {
		onBoth848(t, 4, []string{"k"}, testKilledMemberRedelivers)
	})
}
