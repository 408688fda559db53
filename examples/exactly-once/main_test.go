package main

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/producer"
)

// TestExactlyOnce runs the service against our broker and kfake: every
// input yields exactly one committed output, and the group's committed
// offsets cover every input.
func TestExactlyOnce(t *testing.T) {
	t.Run("kafkit", func(t *testing.T) {
		b := broker.NewTest(t, broker.WithConfig(func(c *broker.Config) { c.NumPartitions = 2 }))
		testExactlyOnce(t, []string{b.Addr()})
	})
	t.Run("kfake", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders", "orders-upper"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		testExactlyOnce(t, c.ListenAddrs())
	})
}

func testExactlyOnce(t *testing.T, addrs []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	p, err := producer.New(producer.Config{BootstrapServers: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	const n = 20
	for i := range n {
		if err := p.SendSync(ctx, &kafkit.Record{Topic: "orders", Partition: kafkit.AnyPartition, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "order-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}

	var out bytes.Buffer
	if err := run(ctx, []string{"-bootstrap", addrs[0], "-count", fmt.Sprint(n)}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}

	r, err := consumer.New(ctx, consumer.Config{BootstrapServers: addrs, GroupID: "uppercaser", IsolationLevel: consumer.ReadCommitted, AutoOffsetReset: consumer.OffsetResetEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	in := []kafkit.TopicPartition{{Topic: "orders", Partition: 0}, {Topic: "orders", Partition: 1}}
	committed, err := r.Committed(ctx, in...)
	if err != nil {
		t.Fatal(err)
	}
	if committed[in[0]]+committed[in[1]] != n {
		t.Errorf("committed offsets %v, want %d records in all", committed, n)
	}
	if err := r.Assign(kafkit.TopicPartition{Topic: "orders-upper", Partition: 0}, kafkit.TopicPartition{Topic: "orders-upper", Partition: 1}); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for total := 0; total < n; {
		recs, err := r.Poll(ctx)
		if err != nil {
			t.Fatalf("after %d outputs: %v", total, err)
		}
		for _, rec := range recs {
			got[string(rec.Value)]++
			total++
		}
	}
	for i := range n {
		if v := fmt.Sprintf("ORDER-%d", i); got[v] != 1 {
			t.Errorf("%s written %d times", v, got[v])
		}
	}
}
