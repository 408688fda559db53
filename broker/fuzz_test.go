package broker

import (
	"context"
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// seedRequests returns one well-formed frame body (header + request, no size
// prefix) per supported API key and version, as real clients send them.
func seedRequests(b *Broker) [][]byte {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	var seeds [][]byte
	topic := "fuzz-topic"
	for key, h := range b.handlers {
		if h == nil {
			continue
		}
		for v := h.min; v <= h.max; v++ {
			req := kmsg.RequestForKey(int16(key))
			req.SetVersion(v)
			switch r := req.(type) {
			case *kmsg.MetadataRequest:
				r.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
				r.AllowAutoTopicCreation = true
			case *kmsg.CreateTopicsRequest:
				r.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: topic, NumPartitions: 2, ReplicationFactor: 1}}
			case *kmsg.ProduceRequest:
				r.Acks = -1
				r.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: make([]byte, 70)}}}}
			case *kmsg.FetchRequest:
				r.Topics = []kmsg.FetchRequestTopic{{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}}}}
			case *kmsg.ListOffsetsRequest:
				r.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: topic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: -1}}}}
			}
			frame := f.AppendRequest(nil, req, 7)
			seeds = append(seeds, frame[4:])
		}
	}
	return seeds
}

// FuzzRequest feeds arbitrary frames through header parsing, kmsg decoding
// and dispatch: the broker must never panic, and must answer or close.
func FuzzRequest(f *testing.F) {
	// F's logging methods may not be called from the fuzz target.
	b := NewTest(f, WithConfig(func(c *Config) { c.Logger = slog.New(slog.DiscardHandler) }))
	for _, s := range seedRequests(b) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < minRequestSize {
			return
		}
		// A fuzzed Fetch or JoinGroup may ask to wait minutes: the
		// connection's context bounds every long poll.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		c := &conn{b: b, ctx: ctx, log: b.log, host: "127.0.0.1"}
		out, err := c.handle(frame)
		// Keep the broker's state bounded across millions of inputs: a
		// fuzzed CreateTopics may ask for thousands of partitions.
		for _, tp := range b.topics.all() {
			if tp.name != "fuzz-topic" {
				b.topics.delete(tp.name)
			}
		}
		if err == nil && out != nil {
			b := out.segs[0].b
			if len(out.segs) != 1 || int(binary.BigEndian.Uint32(b)) != len(b)-4 {
				t.Fatalf("response frame size %d does not match %d bytes", binary.BigEndian.Uint32(b), len(b)-4)
			}
			out.release()
		}
	})
}
