package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/broker"
)

func TestProducerOtel(t *testing.T) {
	b := broker.NewTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := admin.New(ctx, admin.Config{BootstrapServers: []string{b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := adm.CreateTopics(ctx, false, admin.NewTopic{Name: "events", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"-bootstrap", b.Addr(), "-count", "3", "-interval", "10ms"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	if n := strings.Count(s, `span "send events"`); n != 3 {
		t.Errorf("%d send spans, want 3:\n%s", n, s)
	}
	if !strings.Contains(s, "metric messaging.client.sent.messages 3\n") {
		t.Errorf("output lacks the sent-messages total:\n%s", s)
	}
}
