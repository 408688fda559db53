package producer

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kafkit/kafkit"
)

type typedOrder struct {
	ID    string `json:"id"`
	Total int    `json:"total"`
}

// TestTypedRoundTrip sends typed records through a Producer to kfake and
// reads them back with kgo, an independent client.
func TestTypedRoundTrip(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(3, "orders"))
	p := newProducer(t, c, Config{})
	ctx := testCtx(t)
	orders, err := NewTyped[string, *typedOrder](p, kafkit.StringSerde{}, kafkit.JSONSerde[*typedOrder]{})
	if err != nil {
		t.Fatal(err)
	}

	type sent struct {
		key     string
		value   *typedOrder
		rec     *kafkit.Record
		options bool // sent with WithPartition(2), WithHeaders(hs...), WithTimestamp(ts)
	}
	var all []sent
	for _, k := range []string{"alice", "bob", "carol", "dave"} {
		v := &typedOrder{ID: "o-" + k, Total: len(k)}
		r, err := orders.SendSync(ctx, "orders", k, v)
		if err != nil {
			t.Fatalf("SendSync %s: %v", k, err)
		}
		if want := (Murmur2([]byte(k)) & 0x7fffffff) % 3; r.Partition != want {
			t.Errorf("key %s went to partition %d, want murmur2's %d", k, r.Partition, want)
		}
		all = append(all, sent{k, v, r, false})
	}

	// Options: explicit partition, headers, timestamp; a tombstone; async.
	ts := time.UnixMilli(1700000000123)
	hs := []kafkit.Header{{Key: "source", Value: []byte("test")}, {Key: "source", Value: []byte("again")}}
	var wg sync.WaitGroup
	var mu sync.Mutex // guards all from the callbacks
	for _, s := range []sent{{key: "erin", value: &typedOrder{ID: "o-erin", Total: 7}}, {key: "alice"}} {
		wg.Add(1)
		err := orders.Send(ctx, "orders", s.key, s.value, func(r *kafkit.Record, err error) {
			defer wg.Done()
			if err != nil {
				t.Errorf("Send %s: %v", s.key, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			all = append(all, sent{s.key, s.value, r, true})
		}, WithPartition(2), WithHeaders(hs...), WithTimestamp(ts))
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()

	got := consume(t, c, "orders", len(all))
	if len(got) != len(all) {
		t.Fatalf("consumed %d records, want %d", len(got), len(all))
	}
	for _, s := range all {
		i := slices.IndexFunc(got, func(g *kgo.Record) bool { return g.Partition == s.rec.Partition && g.Offset == s.rec.Offset })
		if i < 0 {
			t.Errorf("record %s at %d/%d not consumed", s.key, s.rec.Partition, s.rec.Offset)
			continue
		}
		g := got[i]
		if string(g.Key) != s.key {
			t.Errorf("key %q, want %q", g.Key, s.key)
		}
		v, err := kafkit.JSONSerde[*typedOrder]{}.Deserialize("orders", g.Value)
		switch {
		case err != nil:
			t.Errorf("value of %s: %v", s.key, err)
		case s.value == nil && (g.Value != nil || v != nil):
			t.Errorf("tombstone for %s read back as %q", s.key, g.Value)
		case s.value != nil && (v == nil || *v != *s.value):
			t.Errorf("value of %s = %+v, want %+v", s.key, v, s.value)
		}
		if s.options {
			if g.Partition != 2 {
				t.Errorf("%s went to partition %d, want WithPartition's 2", s.key, g.Partition)
			}
			if !g.Timestamp.Equal(ts) {
				t.Errorf("timestamp of %s = %v, want %v", s.key, g.Timestamp, ts)
			}
			if len(g.Headers) != 2 || g.Headers[0].Key != "source" || string(g.Headers[1].Value) != "again" {
				t.Errorf("headers of %s = %v, want %v", s.key, g.Headers, hs)
			}
		}
	}

	// A second Typed shares the producer.
	words, err := NewTyped[[]byte, *wrapperspb.StringValue](p, kafkit.BytesSerde{}, kafkit.ProtobufSerde[*wrapperspb.StringValue]{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := words.SendSync(ctx, "orders", nil, wrapperspb.String("hello"), WithPartition(0))
	if err != nil || r.Partition != 0 || r.Key != nil {
		t.Fatalf("protobuf SendSync = %+v, %v", r, err)
	}
}

func TestTypedSerializationError(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	p := newProducer(t, c, Config{})
	bad, err := NewTyped[string, func()](p, kafkit.StringSerde{}, kafkit.JSONSerde[func()]{})
	if err != nil {
		t.Fatal(err)
	}
	called := false
	err = bad.Send(testCtx(t), "t", "k", func() {}, func(*kafkit.Record, error) { called = true })
	var typeErr *json.UnsupportedTypeError
	if !errors.Is(err, ErrInvalidRecord) || !errors.As(err, &typeErr) {
		t.Errorf("Send err = %v, want ErrInvalidRecord wrapping *json.UnsupportedTypeError", err)
	}
	if r, err := bad.SendSync(testCtx(t), "t", "k", func() {}); r != nil || !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("SendSync = %v, %v; want nil, ErrInvalidRecord", r, err)
	}
	if err := p.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if called {
		t.Error("callback ran for a record that was never sent")
	}
	if _, err := NewTyped[string, string](nil, kafkit.StringSerde{}, kafkit.StringSerde{}); err == nil {
		t.Error("NewTyped without a producer succeeded")
	}
	if _, err := NewTyped[string, string](p, nil, kafkit.StringSerde{}); err == nil {
		t.Error("NewTyped without a key serializer succeeded")
	}
}
