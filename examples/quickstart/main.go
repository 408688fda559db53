// Command quickstart starts kafkit's broker in-process (in memory), creates a
// topic, produces a few records to it and consumes them back as a consumer group
// member, printing each one:
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/producer"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) (err error) {
	// A single-node broker on a free local port, keeping its logs in memory.
	cfg := broker.DefaultConfig()
	if err := cfg.Set(broker.DevOverrides); err != nil {
		return err
	}
	cfg.Listen, cfg.InMemory = "127.0.0.1:0", true
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := b.Close(context.WithoutCancel(ctx)); err == nil {
			err = cerr
		}
	}()
	fmt.Fprintln(out, "broker listening on", b.Addr())
	bootstrap := []string{b.Addr()}

	const topic, n = "greetings", 3
	adm, err := admin.New(ctx, admin.Config{BootstrapServers: bootstrap})
	if err != nil {
		return err
	}
	defer adm.Close()
	if _, err := adm.CreateTopics(ctx, false, admin.NewTopic{Name: topic, Partitions: 1}); err != nil {
		return err
	}

	// Produce: SendSync waits for the broker's acknowledgement.
	p, err := producer.New(producer.Config{BootstrapServers: bootstrap})
	if err != nil {
		return err
	}
	defer p.Close(context.WithoutCancel(ctx))
	for i := range n {
		r := &kafkit.Record{Topic: topic, Partition: kafkit.AnyPartition, Key: []byte("user-1"), Value: fmt.Appendf(nil, "hello %d", i)}
		if err := p.SendSync(ctx, r); err != nil {
			return err
		}
		fmt.Fprintf(out, "produced %s to partition %d at offset %d\n", r.Value, r.Partition, r.Offset)
	}

	// Consume as a member of group "quickstart", from the earliest offset.
	c, err := consumer.New(ctx, consumer.Config{
		BootstrapServers: bootstrap,
		GroupID:          "quickstart",
		AutoOffsetReset:  consumer.OffsetResetEarliest,
	})
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx)) // commits what was polled and leaves the group
	if err := c.Subscribe(topic); err != nil {
		return err
	}
	for got := 0; got < n; {
		records, err := c.Poll(ctx)
		if err != nil {
			return err
		}
		for _, r := range records {
			fmt.Fprintf(out, "consumed %s[%d]@%d key=%s value=%s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
			got++
		}
	}
	return nil
}
