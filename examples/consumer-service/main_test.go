package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/consumer/processor"
	"github.com/kafkit/kafkit/producer"
)

// syncBuffer is a bytes.Buffer safe for the handler and the test at once.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestConsumerService(t *testing.T) {
	b := broker.NewTest(t)
	addrs := []string{b.Addr()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := admin.New(ctx, admin.Config{BootstrapServers: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := adm.CreateTopics(ctx, false, admin.NewTopic{Name: "events", Partitions: 3}, admin.NewTopic{Name: "events.DLT", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	p, err := producer.New(producer.Config{BootstrapServers: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	const n = 10
	for i := range n {
		v := fmt.Appendf(nil, "v%d", i)
		if i == 4 {
			v = []byte{} // malformed: dead-lettered
		}
		if err := p.SendSync(ctx, &kafkit.Record{Topic: "events", Partition: kafkit.AnyPartition, Key: fmt.Appendf(nil, "k%d", i), Value: v}); err != nil {
			t.Fatal(err)
		}
	}

	var out syncBuffer
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(rctx, []string{"-bootstrap", b.Addr(), "-group", "svc-test"}, &out) }()
	for strings.Count(out.String(), "handled ") < n-1 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := strings.Count(out.String(), "handled "); got != n-1 {
		t.Fatalf("%d records handled, want %d:\n%s", got, n-1, out.String())
	}

	// The malformed record is in the dead-letter topic.
	c, err := consumer.New(ctx, consumer.Config{BootstrapServers: addrs, AutoOffsetReset: consumer.OffsetResetEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.Assign(kafkit.TopicPartition{Topic: "events.DLT"}); err != nil {
		t.Fatal(err)
	}
	recs, err := c.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, err := processor.ParseDeadLetter(recs[0])
	if err != nil || string(recs[0].Key) != "k4" || d.Topic != "events" || d.Error != errMalformed.Error() {
		t.Fatalf("dead letter %+v key %s: %v", d, recs[0].Key, err)
	}
}
