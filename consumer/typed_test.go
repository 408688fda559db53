package consumer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
)

type order struct {
	ID   int    `json:"id"`
	Item string `json:"item"`
}

func TestTypedPoll(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	values := [][]byte{[]byte(`{"id":1,"item":"book"}`), []byte(`{not json`), nil, []byte(`{"id":3,"item":"pen"}`)}
	for i, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: []byte{'k', byte('0' + i)}, Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	cons, err := consumer.New(ctx, consumer.Config{BootstrapServers: c.ListenAddrs(), AutoOffsetReset: consumer.OffsetResetEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close(context.Background())
	if err := cons.Assign(kafkit.TopicPartition{Topic: "orders"}); err != nil {
		t.Fatal(err)
	}
	if _, err := consumer.NewTyped[string, *order](cons, nil, kafkit.JSONSerde[*order]{}); err == nil {
		t.Fatal("NewTyped without a key deserializer succeeded")
	}
	typed, err := consumer.NewTyped[string, *order](cons, kafkit.StringSerde{}, kafkit.JSONSerde[*order]{})
	if err != nil {
		t.Fatal(err)
	}
	var got []consumer.TypedRecord[string, *order]
	var bad []*consumer.DeserializeError
	for len(got)+len(bad) < len(values) {
		recs, err := typed.Poll(ctx)
		got = append(got, recs...)
		if err != nil {
			var de *consumer.DeserializeError
			if !errors.As(err, &de) {
				t.Fatalf("Poll: %v", err)
			}
			bad = append(bad, de)
		}
	}
	if len(got) != 3 || len(bad) != 1 {
		t.Fatalf("%d records, %d failures; want 3 and 1", len(got), len(bad))
	}
	if bad[0].Record.Offset != 1 || bad[0].IsKey {
		t.Errorf("failure at offset %d (key %v), want the value at 1", bad[0].Record.Offset, bad[0].IsKey)
	}
	want := []struct {
		key    string
		offset int64
		id     int // -1: a tombstone, nil value
	}{{"k0", 0, 1}, {"k2", 2, -1}, {"k3", 3, 3}}
	for i, w := range want {
		r := got[i]
		if r.Key != w.key || r.Record.Offset != w.offset {
			t.Errorf("record %d: key %q offset %d, want %q %d", i, r.Key, r.Record.Offset, w.key, w.offset)
		}
		if (w.id == -1) != (r.Value == nil) || (r.Value != nil && r.Value.ID != w.id) {
			t.Errorf("record %d: value %+v, want id %d", i, r.Value, w.id)
		}
	}
}
