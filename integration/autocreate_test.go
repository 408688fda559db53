package integration

import (
	"context"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/producer"
)

// TestAutoCreateTopics: with auto.create.topics.enable (Kafka's default) our
// producer and consumer ask Metadata to create the topic, as Java's do; with
// it off the producer fails after max.block.ms naming the topic.
func TestAutoCreateTopics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := broker.NewTest(t, broker.WithConfig(func(c *broker.Config) { c.NumPartitions = 3 }))
	p, err := producer.New(producer.Config{BootstrapServers: []string{b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	r := &kafkit.Record{Topic: "created-by-producer", Partition: kafkit.AnyPartition, Value: []byte("v")}
	if err := p.SendSync(ctx, r); err != nil {
		t.Fatalf("send to a new topic: %v", err)
	}
	c, err := consumer.New(ctx, consumer.Config{BootstrapServers: []string{b.Addr()}, GroupID: "g"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.Subscribe("created-by-consumer"); err != nil {
		t.Fatal(err)
	}
	pollCtx, pollCancel := context.WithTimeout(ctx, 2*time.Second)
	c.Poll(pollCtx) // joins the group, which needs the topic's metadata
	pollCancel()
	lag, err := c.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(lag) != 3 {
		t.Fatalf("consumer's topic has %d assigned partitions, want 3 (num.partitions)", len(lag))
	}

	off := broker.NewTest(t, broker.WithConfig(func(c *broker.Config) { c.AutoCreateTopics = false }))
	p2, err := producer.New(producer.Config{BootstrapServers: []string{off.Addr()}, MaxBlock: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close(ctx)
	err = p2.SendSync(ctx, &kafkit.Record{Topic: "missing", Partition: kafkit.AnyPartition, Value: []byte("v")})
	if err == nil {
		t.Fatal("send to a missing topic with auto-creation off succeeded")
	}
	t.Logf("missing topic: %v", err)
}
