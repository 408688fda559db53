package integration

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/producer"
)

// TestProducerSurvivesBrokerRestarts: 200,000 records across 12 partitions,
// idempotent with 5 requests in flight, while our broker restarts twice
// mid-stream on the same address and data dir: every record is acknowledged
// exactly once, nothing is stored twice, and each partition holds its
// records in send order.
func TestProducerSurvivesBrokerRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 records with two broker restarts")
	}
	cfg := broker.DefaultConfig()
	if err := cfg.Set(broker.DevOverrides); err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Logger = slog.New(slog.DiscardHandler)
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = b.Addr() // restarts come back on the same address
	defer func() { b.Close(context.Background()) }()

	const topic, partitions, total = "restarts", 12, 200_000
	createTopicOn(t, []string{b.Addr()}, topic, partitions)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := producer.New(producer.Config{BootstrapServers: []string{b.Addr()}, MaxInFlight: 5, RetryBackoff: 20 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acks := make([]int, total) // times each record was acknowledged
	var failed []error
	restartAt := map[int]bool{total / 3: true, 2 * total / 3: true}
	for i := 0; i < total; i++ {
		if restartAt[i] {
			if err := b.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if b, err = broker.New(cfg); err != nil {
				t.Fatalf("restart: %v", err)
			}
		}
		r := &kafkit.Record{Topic: topic, Partition: kafkit.AnyPartition, Key: []byte(strconv.Itoa(i % 1000)), Value: []byte(strconv.Itoa(i))}
		err := p.Send(ctx, r, func(_ *kafkit.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, err)
				return
			}
			acks[i]++
		})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(failed) > 0 {
		t.Fatalf("%d records failed, first: %v", len(failed), failed[0])
	}
	for i, n := range acks {
		if n != 1 {
			t.Fatalf("record %d acknowledged %d times", i, n)
		}
	}

	c, err := consumer.New(ctx, consumer.Config{BootstrapServers: []string{b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var tps []kafkit.TopicPartition
	for i := int32(0); i < partitions; i++ {
		tps = append(tps, kafkit.TopicPartition{Topic: topic, Partition: i})
	}
	if err := c.Assign(tps...); err != nil {
		t.Fatal(err)
	}
	if err := c.SeekToBeginning(ctx, tps...); err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, total)
	last := map[int32]int{}
	for got := 0; got < total; {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("after %d records: %v", got, err)
		}
		for _, r := range recs {
			i, _ := strconv.Atoi(string(r.Value))
			if seen[i] {
				t.Fatalf("record %d stored twice (second at %d/%d)", i, r.Partition, r.Offset)
			}
			seen[i] = true
			if prev, ok := last[r.Partition]; ok && i <= prev {
				t.Fatalf("partition %d: record %d after %d: send order broken", r.Partition, i, prev)
			}
			last[r.Partition] = i
			got++
		}
	}
}
