package broker_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/broker"
)

// KIP-937 over TCP: under CreateTime the broker refuses a batch with a
// record further from its clock than message.timestamp.before.max.ms or
// after.max.ms (Kafka 4's defaults: no bound before, one hour after) with
// INVALID_TIMESTAMP, Kafka's message, and a RecordErrors entry naming the
// record, and stores nothing of the batch; the other partitions of the
// request are written. A topic override through AlterConfigs loosens the
// bound, and DescribeConfigs shows the keys as Kafka does.
func TestProduceTimestampBounds(t *testing.T) {
	b := broker.NewTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const topic = "timestamps"
	id := createTopic(ctx, t, cl, topic, 2)

	describe := func(key string) kmsg.DescribeConfigsResponseResourceConfig {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName, r.ConfigNames = kmsg.ConfigResourceTypeTopic, topic, []string{key}
		req.Resources = append(req.Resources, r)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Resources) != 1 || len(resp.Resources[0].Configs) != 1 {
			t.Fatalf("DescribeConfigs %s: %v %+v", key, err, resp)
		}
		return resp.Resources[0].Configs[0]
	}
	for key, want := range map[string]string{"message.timestamp.before.max.ms": "9223372036854775807", "message.timestamp.after.max.ms": "3600000"} {
		if c := describe(key); c.Value == nil || *c.Value != want || c.Source != kmsg.ConfigSourceDefaultConfig {
			t.Fatalf("%s: value %v source %d, want the default %s", key, c.Value, c.Source, want)
		}
	}

	// kgo's producer surfaces the partition's error.
	now := time.Now()
	future := kgo.Record{Topic: topic, Partition: 0, Value: []byte("future"), Timestamp: now.Add(2 * time.Hour)}
	if err := cl.ProduceSync(ctx, &future).FirstErr(); !errors.Is(err, kerr.InvalidTimestamp) {
		t.Fatalf("record two hours ahead: %v, want INVALID_TIMESTAMP", err)
	}
	// Before: no bound by default, as in Kafka 4.
	past := kgo.Record{Topic: topic, Partition: 0, Value: []byte("past"), Timestamp: time.UnixMilli(1)}
	if err := cl.ProduceSync(ctx, &past).FirstErr(); err != nil {
		t.Fatalf("record of 1970: %v", err)
	}

	// One request: partition 0 a batch whose middle record is three hours
	// ahead, partition 1 a valid batch.
	batch := func(ts ...int64) []byte {
		var recs []byte
		for i, v := range ts {
			r := kmsg.Record{TimestampDelta64: v - ts[0], OffsetDelta: int32(i), Value: []byte(strconv.Itoa(i))}
			r.Length = int32(len(r.AppendTo(nil)) - 1)
			recs = r.AppendTo(recs)
		}
		rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(ts) - 1), FirstTimestamp: ts[0],
			MaxTimestamp: max(ts[0], ts[len(ts)-1]), ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(ts)), Records: recs}
		rb.Length = int32(49 + len(recs))
		out := rb.AppendTo(nil)
		binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
		return out
	}
	produce := func(p0, p1 []byte) *kmsg.ProduceResponse {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		for i, recs := range [][]byte{p0, p1} {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = int32(i), recs
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	ms := time.Now().UnixMilli()
	ahead := ms + 3*time.Hour.Milliseconds()
	resp := produce(batch(ms, ahead, ms), batch(ms, ms))
	p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
	if p0.ErrorCode != kerr.InvalidTimestamp.Code || p0.ErrorMessage == nil ||
		*p0.ErrorMessage != "One or more records have been rejected due to invalid timestamp" {
		t.Fatalf("partition 0: code %d message %v", p0.ErrorCode, p0.ErrorMessage)
	}
	if len(p0.ErrorRecords) != 1 || p0.ErrorRecords[0].RelativeOffset != 1 || p0.ErrorRecords[0].ErrorMessage == nil {
		t.Fatalf("partition 0 record errors %+v", p0.ErrorRecords)
	}
	m := regexp.MustCompile(`^Timestamp (\d+) of message with offset 1 is out of range\. The timestamp should be within \[(-\d+), (\d+)\]$`).
		FindStringSubmatch(*p0.ErrorRecords[0].ErrorMessage)
	if m == nil {
		t.Fatalf("record error %q", *p0.ErrorRecords[0].ErrorMessage)
	}
	lo, _ := strconv.ParseInt(m[2], 10, 64)
	hi, _ := strconv.ParseInt(m[3], 10, 64)
	if m[1] != strconv.FormatInt(ahead, 10) || uint64(hi-lo) != math.MaxInt64+3600000 || hi < ms+3600000 || hi > time.Now().UnixMilli()+3600000 {
		t.Fatalf("record error %q: bounds not [broker's now - Long.MAX_VALUE, now + 1h]", *p0.ErrorRecords[0].ErrorMessage)
	}
	if p1.ErrorCode != 0 || p1.BaseOffset != 0 {
		t.Fatalf("partition 1: code %d base offset %d", p1.ErrorCode, p1.BaseOffset)
	}
	end := func(partition int32) int64 {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = partition, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("ListOffsets: %v %+v", err, resp)
		}
		return resp.Topics[0].Partitions[0].Offset
	}
	// Partition 0 holds the 1970 record alone: nothing of the refused batch.
	if e0, e1 := end(0), end(1); e0 != 1 || e1 != 2 {
		t.Fatalf("end offsets %d and %d, want 1 and 2", e0, e1)
	}

	// A topic override loosens the bound (AlterConfigs replaces the
	// topic's overrides).
	req := kmsg.NewPtrAlterConfigsRequest()
	r := kmsg.NewAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	for k, v := range map[string]string{"message.timestamp.after.max.ms": fmt.Sprint(4 * time.Hour.Milliseconds()), "message.timestamp.before.max.ms": "-1"} {
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		r.Configs = append(r.Configs, c)
	}
	req.Resources = append(req.Resources, r)
	ac, err := req.RequestWith(ctx, cl)
	if err != nil || ac.Resources[0].ErrorCode != kerr.InvalidConfig.Code {
		t.Fatalf("AlterConfigs with a negative bound: %v %+v, want INVALID_CONFIG", err, ac)
	}
	req.Resources[0].Configs = req.Resources[0].Configs[:0]
	c := kmsg.NewAlterConfigsRequestResourceConfig()
	c.Name, c.Value = "message.timestamp.after.max.ms", kmsg.StringPtr(fmt.Sprint(4*time.Hour.Milliseconds()))
	req.Resources[0].Configs = append(req.Resources[0].Configs, c)
	if ac, err := req.RequestWith(ctx, cl); err != nil || ac.Resources[0].ErrorCode != 0 {
		t.Fatalf("AlterConfigs: %v %+v", err, ac)
	}
	if c := describe("message.timestamp.after.max.ms"); c.Value == nil || *c.Value != "14400000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("after the override: value %v source %d", c.Value, c.Source)
	}
	resp = produce(batch(ms, ahead, ms), batch(ms))
	if p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]; p0.ErrorCode != 0 || p0.BaseOffset != 1 || len(p0.ErrorRecords) != 0 || p1.ErrorCode != 0 {
		t.Fatalf("after the override: %+v", resp.Topics[0].Partitions)
	}
	if e0 := end(0); e0 != 4 {
		t.Fatalf("end offset %d, want 4", e0)
	}

	// The broker keys are dynamic, as in Kafka: a cluster-wide
	// log.message.timestamp.before.max.ms bounds the topic without an
	// override of its own at once.
	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ir := kmsg.NewIncrementalAlterConfigsRequestResource()
	ir.ResourceType = kmsg.ConfigResourceTypeBroker
	ic := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	ic.Name, ic.Op, ic.Value = "log.message.timestamp.before.max.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("3600000")
	ir.Configs = append(ir.Configs, ic)
	inc.Resources = append(inc.Resources, ir)
	if ir, err := inc.RequestWith(ctx, cl); err != nil || ir.Resources[0].ErrorCode != 0 {
		t.Fatalf("IncrementalAlterConfigs: %v %+v", err, ir)
	}
	if c := describe("message.timestamp.before.max.ms"); c.Value == nil || *c.Value != "3600000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("after the broker change: value %v source %d", c.Value, c.Source)
	}
	past = kgo.Record{Topic: topic, Partition: 1, Value: []byte("past"), Timestamp: time.UnixMilli(1)}
	if err := cl.ProduceSync(ctx, &past).FirstErr(); !errors.Is(err, kerr.InvalidTimestamp) {
		t.Fatalf("record of 1970 after the broker change: %v, want INVALID_TIMESTAMP", err)
	}

	// Under LogAppendTime no timestamp is checked.
	inc.Resources[0].ResourceType, inc.Resources[0].ResourceName = kmsg.ConfigResourceTypeTopic, topic
	inc.Resources[0].Configs[0].Name, inc.Resources[0].Configs[0].Value = "message.timestamp.type", kmsg.StringPtr("LogAppendTime")
	if ir, err := inc.RequestWith(ctx, cl); err != nil || ir.Resources[0].ErrorCode != 0 {
		t.Fatalf("IncrementalAlterConfigs: %v %+v", err, ir)
	}
	if err := cl.ProduceSync(ctx, &past).FirstErr(); err != nil {
		t.Fatalf("record of 1970 under LogAppendTime: %v", err)
	}
}
