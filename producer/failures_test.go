package producer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
)

// errorResponse answers a Produce request with code for every partition.
func errorResponse(req kmsg.Request, code int16) kmsg.Response {
	preq := req.(*kmsg.ProduceRequest)
	resp := preq.ResponseKind().(*kmsg.ProduceResponse)
	for _, t := range preq.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// TestIdempotentOrderUnderFailures sends many records over 12 partitions
// with 5 requests in flight while kfake kills connections and answers
// NOT_LEADER_OR_FOLLOWER: every record must be acknowledged exactly once,
// stored exactly once, and each partition must hold its records in send
// order.
func TestIdempotentOrderUnderFailures(t *testing.T) {
	const (
		parts = 12
		n     = 6000
	)
	c := newCluster(t, kfake.SeedTopics(parts, "t"))
	var produces, killed, rejected atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		i := produces.Add(1)
		if i > 400 {
			return nil, nil, false
		}
		switch i % 9 {
		case 4:
			c.KeepControl()
			killed.Add(1)
			return nil, errors.New("injected: connection killed"), true
		case 7:
			c.KeepControl()
			rejected.Add(1)
			return errorResponse(req, kerr.NotLeaderForPartition.Code), nil, true
		}
		return nil, nil, false
	})
	p := newProducer(t, c, Config{BatchSize: 1024, Linger: time.Millisecond, MaxInFlight: 5, RetryBackoff: 5 * time.Millisecond})
	a := newAcks()
	for i := range n {
		part := i % parts
		r := &kafkit.Record{Topic: "t", Partition: int32(part), Value: []byte(fmt.Sprintf("%d-%06d", part, i))}
		if err := a.send(t, p, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	a.wg.Wait()
	if killed.Load() == 0 || rejected.Load() == 0 {
		t.Fatalf("no failures injected (%d produce requests)", produces.Load())
	}
	for v, cnt := range a.n {
		if cnt != 1 || a.errs[v] != nil {
			t.Fatalf("record %s: %d callbacks, err %v", v, cnt, a.errs[v])
		}
	}
	if len(a.n) != n {
		t.Fatalf("%d records acknowledged, want %d", len(a.n), n)
	}
	got := consume(t, c, "t", n)
	if len(got) != n {
		t.Fatalf("stored %d records, want %d (duplicates?)", len(got), n)
	}
	last := map[int32]string{}
	for _, r := range got {
		v := string(r.Value)
		if !strings.HasPrefix(v, strconv.Itoa(int(r.Partition))+"-") {
			t.Fatalf("record %s in partition %d", v, r.Partition)
		}
		if v <= last[r.Partition] {
			t.Fatalf("partition %d: %s after %s", r.Partition, v, last[r.Partition])
		}
		last[r.Partition] = v
		if ack := a.recs[v]; ack.Offset != r.Offset {
			t.Fatalf("record %s acked at offset %d, stored at %d", v, ack.Offset, r.Offset)
		}
	}
	t.Logf("%d produce requests, %d connections killed, %d rejected", produces.Load(), killed.Load(), rejected.Load())
}

// TestBufferFullBlocksThenFails: with buffer.memory taken by a batch that
// cannot be delivered, Send waits max.block.ms and fails with ErrBufferFull.
func TestBufferFullBlocksThenFails(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "t"))
	// Hold every Produce request until the test ends.
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	p := newProducer(t, c, Config{BatchSize: 1000, BufferMemory: 2000, MaxBlock: 200 * time.Millisecond, Linger: -1})
	t.Cleanup(func() { close(release) }) // runs before the producer's Close
	// Two batches fill buffer.memory.
	for i := range 2 {
		if err := p.Send(testCtx(t), &kafkit.Record{Topic: "t", Partition: int32(i), Value: make([]byte, 900)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	err := p.Send(testCtx(t), &kafkit.Record{Topic: "t", Partition: 0, Value: make([]byte, 900)}, nil)
	if !errors.Is(err, ErrBufferFull) || !strings.Contains(err.Error(), "buffer.memory (2000 bytes) exhausted: waited max.block.ms=200") {
		t.Fatalf("got %v, want ErrBufferFull", err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("Send returned after %v, before max.block.ms", waited)
	}
	// ctx ends the wait early.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Send(ctx, &kafkit.Record{Topic: "t", Partition: 0, Value: make([]byte, 900)}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled ctx: %v", err)
	}
}

// TestDeliveryTimeoutFailsOnlyExpired: partition 0's leader rejects every
// request, partition 1 works; records of partition 0 fail with
// ErrRecordTimeout after delivery.timeout.ms, those of partition 1 succeed.
func TestDeliveryTimeoutFailsOnlyExpired(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "t"))
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		preq := req.(*kmsg.ProduceRequest)
		for _, tp := range preq.Topics {
			for _, pp := range tp.Partitions {
				if pp.Partition == 0 {
					return errorResponse(req, kerr.NotEnoughReplicas.Code), nil, true
				}
			}
		}
		return nil, nil, false
	})
	p := newProducer(t, c, Config{DeliveryTimeout: 400 * time.Millisecond, RequestTimeout: 300 * time.Millisecond,
		Linger: time.Millisecond, RetryBackoff: 20 * time.Millisecond, MaxInFlight: 1})
	a := newAcks()
	for i := range 20 {
		if err := a.send(t, p, &kafkit.Record{Topic: "t", Partition: int32(i % 2), Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	a.wg.Wait()
	lastErr := false // a batch that expired on the wire in its first attempt has none
	for i := range 20 {
		err := a.errs[strconv.Itoa(i)]
		if i%2 == 0 && !errors.Is(err, ErrRecordTimeout) {
			t.Fatalf("record %d on partition 0: %v, want ErrRecordTimeout", i, err)
		}
		lastErr = lastErr || errors.Is(err, kerr.NotEnoughReplicas)
		if i%2 == 1 && err != nil {
			t.Fatalf("record %d on partition 1: %v", i, err)
		}
	}
	if !lastErr {
		t.Fatal("no expired record names NOT_ENOUGH_REPLICAS as its last error")
	}
}

// TestLeaderMoves moves partition leaders between three brokers while
// records flow: NOT_LEADER_OR_FOLLOWER sends the producer to refresh
// metadata, and order and exactly-once still hold.
func TestLeaderMoves(t *testing.T) {
	const (
		parts = 12
		n     = 3000
	)
	c := newCluster(t, kfake.NumBrokers(3), kfake.SeedTopics(parts, "t"))
	p := newProducer(t, c, Config{BatchSize: 2048, Linger: time.Millisecond, RetryBackoff: 5 * time.Millisecond})
	a := newAcks()
	for i := range n {
		if i%1000 == 500 {
			c.ShufflePartitionLeaders()
		}
		part := i % parts
		if err := a.send(t, p, &kafkit.Record{Topic: "t", Partition: int32(part), Value: []byte(fmt.Sprintf("%d-%06d", part, i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	a.wg.Wait()
	for v, cnt := range a.n {
		if cnt != 1 || a.errs[v] != nil {
			t.Fatalf("record %s: %d callbacks, err %v", v, cnt, a.errs[v])
		}
	}
	got := consume(t, c, "t", n)
	if len(got) != n {
		t.Fatalf("stored %d records, want %d", len(got), n)
	}
	last := map[int32]string{}
	for _, r := range got {
		v := string(r.Value)
		if v <= last[r.Partition] {
			t.Fatalf("partition %d: %s after %s", r.Partition, v, last[r.Partition])
		}
		last[r.Partition] = v
	}
}

// TestIdempotenceErrors injects OUT_OF_ORDER_SEQUENCE_NUMBER and
// UNKNOWN_PRODUCER_ID as a broker that lost our producer state would send
// them. Since KIP-360 Java's idempotent producer retries both under a new
// epoch (issue 21, case 8: an out-of-order batch at the head of its
// partition used to fail its records): every record is stored exactly
// once, in order, the partition that failed under a bumped epoch.
func TestIdempotenceErrors(t *testing.T) {
	for _, tc := range []struct {
		code     int16
		inflight int
	}{
		{kerr.OutOfOrderSequenceNumber.Code, 1}, {kerr.OutOfOrderSequenceNumber.Code, 5},
		{kerr.UnknownProducerID.Code, 1}, {kerr.UnknownProducerID.Code, 5},
	} {
		code := tc.code
		t.Run(fmt.Sprintf("%s/inflight=%d", kerr.ErrorForCode(code).(*kerr.Error).Message, tc.inflight), func(t *testing.T) {
			c := newCluster(t, kfake.SeedTopics(3, "t"))
			var produces, bumped atomic.Int32
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				if produces.Add(1) == 3 {
					return errorResponse(req, code), nil, true
				}
				for _, t := range req.(*kmsg.ProduceRequest).Topics {
					for _, p := range t.Partitions {
						if epoch := int16(binary.BigEndian.Uint16(p.Records[51:])); epoch > 0 { // the batch header's producerEpoch
							bumped.Add(1)
						}
					}
				}
				return nil, nil, false
			})
			p := newProducer(t, c, Config{BatchSize: 512, Linger: -1, MaxInFlight: tc.inflight, RetryBackoff: time.Millisecond})
			const n = 600
			a := newAcks()
			for i := range n {
				part := i % 3
				if err := a.send(t, p, &kafkit.Record{Topic: "t", Partition: int32(part), Value: []byte(fmt.Sprintf("%d-%06d", part, i))}); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Flush(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			a.wg.Wait()
			if bumped.Load() == 0 {
				t.Fatal("no batch under a bumped epoch")
			}
			for v, err := range a.errs {
				if err != nil {
					t.Fatalf("record %s: %v", v, err)
				}
			}
			got := consume(t, c, "t", n)
			if len(got) != n {
				t.Fatalf("stored %d records, want %d", len(got), n)
			}
			last := map[int32]string{}
			for _, r := range got {
				v := string(r.Value)
				if a.errs[v] != nil || v <= last[r.Partition] {
					t.Fatalf("partition %d: %s stored after %s (err %v)", r.Partition, v, last[r.Partition], a.errs[v])
				}
				last[r.Partition] = v
			}
		})
	}
}

// TestSplitTooLargeBatch: the broker rejects batches over 3000 bytes with
// MESSAGE_TOO_LARGE; the producer splits them until they fit, and every
// record is stored once, in order.
func TestSplitTooLargeBatch(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	var rejected atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, pp := range tp.Partitions {
				if len(pp.Records) > 3000 {
					rejected.Add(1)
					return errorResponse(req, kerr.MessageTooLarge.Code), nil, true
				}
			}
		}
		return nil, nil, false
	})
	for _, idempotent := range []bool{true, false} {
		t.Run(fmt.Sprint("idempotent=", idempotent), func(t *testing.T) {
			topic := "t"
			// Without idempotence only one request in flight keeps order.
			inflight := 5
			if !idempotent {
				inflight = 1
			}
			p := newProducer(t, c, Config{BatchSize: 16384, Linger: 20 * time.Millisecond, EnableIdempotence: &idempotent,
				MaxInFlight: inflight, RetryBackoff: time.Millisecond})
			a := newAcks()
			const n = 200
			for i := range n {
				if err := a.send(t, p, &kafkit.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprintf("%v-%04d-%0200d", idempotent, i, i))}); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Flush(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			a.wg.Wait()
			for v, err := range a.errs {
				if err != nil || a.n[v] != 1 {
					t.Fatalf("record %.10s: %d callbacks, %v", v, a.n[v], err)
				}
			}
			if rejected.Load() == 0 {
				t.Fatal("no batch was too large: the test tests nothing")
			}
		})
	}
	got := consume(t, c, "t", 400)
	if len(got) != 400 {
		t.Fatalf("stored %d records, want 400", len(got))
	}
	for i, r := range got {
		if i > 0 && string(r.Value[:10]) == string(got[i-1].Value[:10]) || (i%200 > 0 && string(r.Value) <= string(got[i-1].Value)) {
			t.Fatalf("record %d %.10s after %.10s", i, r.Value, got[i-1].Value)
		}
	}
}
