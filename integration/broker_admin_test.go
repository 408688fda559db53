package integration

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkit/kafkit/broker"
)

func produceN(t *testing.T, addr, topic string, n int, partition int32) {
	t.Helper()
	cfg := saramaConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Flush.MaxMessages = 10 // batches well below the tests' small segment.bytes
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: partition, Value: sarama.StringEncoder(strings.Repeat("v", 100))}
	}
	if err := p.SendMessages(msgs); err != nil {
		var pe sarama.ProducerErrors
		if errors.As(err, &pe) && len(pe) > 0 {
			t.Fatalf("%v; first: %v", err, pe[0].Err)
		}
		t.Fatal(err)
	}
}

// TestSaramaConfigsRetentionAndDeleteRecords: IncrementalAlterConfigs of
// retention.ms takes effect on the next retention check, segments roll by
// segment.bytes, DeleteRecords moves the log start offset, DescribeConfigs
// and DescribeLogDirs report what changed.
func TestSaramaConfigsRetentionAndDeleteRecords(t *testing.T) {
	b := broker.NewTest(t, broker.OnDisk(), broker.WithConfig(func(c *broker.Config) {
		c.RetentionCheckIntervalMs = 50
	}))
	cfg := saramaConfig()
	admin, err := sarama.NewClusterAdmin([]string{b.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	segBytes := "2048"
	if err := admin.CreateTopic("ret", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: map[string]*string{"segment.bytes": &segBytes}}, false); err != nil {
		t.Fatal(err)
	}
	produceN(t, b.Addr(), "ret", 200, 0)

	client, err := sarama.NewClient([]string{b.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	earliest := func() int64 {
		off, err := client.GetOffset("ret", 0, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		return off
	}
	if got := earliest(); got != 0 {
		t.Fatalf("earliest before retention = %d", got)
	}
	dirs, err := admin.DescribeLogDirs([]int32{0})
	if err != nil || len(dirs[0]) != 1 {
		t.Fatalf("DescribeLogDirs: %v %+v", err, dirs)
	}
	var size int64
	for _, tp := range dirs[0][0].Topics {
		if tp.Topic == "ret" {
			size = tp.Partitions[0].Size
		}
	}
	if size < 200*100 {
		t.Fatalf("DescribeLogDirs size %d, want at least the 20000 bytes produced", size)
	}

	// DeleteRecords first: the start offset moves to exactly 50.
	if err := admin.DeleteRecords("ret", map[int32]int64{0: 50}); err != nil {
		t.Fatal(err)
	}
	if got := earliest(); got != 50 {
		t.Fatalf("earliest after DeleteRecords(50) = %d", got)
	}

	// Time retention of 1 ms: every closed segment goes on the next check.
	one := "1"
	if err := admin.IncrementalAlterConfig(sarama.TopicResource, "ret", map[string]sarama.IncrementalAlterConfigsEntry{
		"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &one},
	}, false); err != nil {
		t.Fatal(err)
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: "ret", ConfigNames: []string{"retention.ms"}})
	if err != nil || len(entries) != 1 || entries[0].Value != "1" || entries[0].Source != sarama.SourceTopic {
		t.Fatalf("DescribeConfig after alter: %v %+v", err, entries)
	}
	deadline := time.Now().Add(10 * time.Second)
	for earliest() < 150 {
		if time.Now().After(deadline) {
			t.Fatalf("retention did not delete old segments: earliest still %d", earliest())
		}
		time.Sleep(50 * time.Millisecond)
	}
	latest, _ := client.GetOffset("ret", 0, sarama.OffsetNewest)
	if latest != 200 {
		t.Fatalf("latest = %d, want 200 (retention must not lose the end offset)", latest)
	}

	// Broker-level dynamic config and a read-only key.
	v := "3600000"
	if err := admin.AlterConfig(sarama.BrokerResource, "0", map[string]*string{"log.retention.ms": &v}, false); err != nil {
		t.Fatal(err)
	}
	entries, err = admin.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: "0", ConfigNames: []string{"log.retention.ms"}})
	if err != nil || len(entries) != 1 || entries[0].Value != v || entries[0].Source != sarama.SourceDynamicBroker {
		t.Fatalf("broker config after alter: %v %+v", err, entries)
	}
	err = admin.AlterConfig(sarama.BrokerResource, "0", map[string]*string{"num.io.threads": &v}, false)
	if err == nil || !strings.Contains(err.Error(), "Cannot update these configs dynamically") {
		t.Fatalf("read-only broker key: %v", err)
	}
	bad := "abc"
	err = admin.IncrementalAlterConfig(sarama.TopicResource, "ret", map[string]sarama.IncrementalAlterConfigsEntry{
		"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &bad},
	}, false)
	if !errors.Is(err, sarama.ErrInvalidConfig) {
		t.Fatalf("bad value: want INVALID_CONFIG, got %v", err)
	}
}
