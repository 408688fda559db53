package integration

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// TestIdempotentStateSurvivesRestart drives the broker's producer state by
// hand: InitProducerId, sequenced batches, a retried batch answered with its
// original offset (also after a restart), and a sequence gap refused with
// OUT_OF_ORDER_SEQUENCE_NUMBER.
func TestIdempotentStateSurvivesRestart(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Set(broker.DevOverrides)
	cfg.Listen, cfg.DataDir, cfg.Logger = "127.0.0.1:0", t.TempDir(), slog.New(slog.DiscardHandler)
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = b.Addr()
	defer func() { b.Close(context.Background()) }()
	createTopicOn(t, []string{b.Addr()}, "idem", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connect := func() *client.Client {
		cl, err := client.New(ctx, client.Config{SeedBrokers: []string{b.Addr()}, RetryBackoff: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	cl := connect()
	resp, err := cl.Request(ctx, kmsg.NewPtrInitProducerIDRequest())
	if err != nil {
		t.Fatal(err)
	}
	pid, epoch := resp.(*kmsg.InitProducerIDResponse).ProducerID, resp.(*kmsg.InitProducerIDResponse).ProducerEpoch

	batch := func(seq int32, n int) []byte {
		bl := recordbatch.NewBuilder(recordbatch.Options{}, 0)
		for range n {
			bl.Append(time.Now().UnixMilli(), nil, []byte("v"), nil)
		}
		raw, err := bl.Finish(recordbatch.Producer{ID: pid, Epoch: epoch, BaseSequence: seq})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	produce := func(cl *client.Client, raw []byte) (int16, int64) {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		md, err := cl.Metadata(ctx, "idem")
		if err != nil {
			t.Fatal(err)
		}
		// Produce v13 names topics by id; the client picks the version.
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "idem", TopicID: md.Topics["idem"].ID, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: append([]byte(nil), raw...)}}}}
		resp, err := cl.RequestBroker(ctx, 0, req)
		if err != nil {
			t.Fatal(err)
		}
		p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
		return p.ErrorCode, p.BaseOffset
	}
	first := batch(0, 3)
	if code, off := produce(cl, first); code != 0 || off != 0 {
		t.Fatalf("first batch: code %d offset %d", code, off)
	}
	if code, off := produce(cl, batch(3, 2)); code != 0 || off != 3 {
		t.Fatalf("second batch: code %d offset %d", code, off)
	}
	if code, off := produce(cl, first); code != 0 || off != 0 {
		t.Fatalf("retried first batch: code %d offset %d, want its original offset 0", code, off)
	}
	cl.Close()

	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, err = broker.New(cfg); err != nil {
		t.Fatal(err)
	}
	cl = connect()
	defer cl.Close()
	if code, off := produce(cl, batch(3, 2)); code != 0 || off != 3 {
		t.Fatalf("retried second batch after restart: code %d offset %d, want 3", code, off)
	}
	if code, _ := produce(cl, batch(9, 1)); code != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("sequence gap: code %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", code)
	}
	if code, off := produce(cl, batch(5, 1)); code != 0 || off != 5 {
		t.Fatalf("next batch: code %d offset %d", code, off)
	}
}
