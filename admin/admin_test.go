package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/producer"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
)

// cluster is one broker implementation the admin client is tested against.
type cluster struct {
	name  string
	start func(t *testing.T) string // returns a bootstrap address
}

var clusters = []cluster{
	{"kafkit", func(t *testing.T) string { return broker.NewTest(t).Addr() }},
	{"kfake", func(t *testing.T) string {
		c, err := kfake.NewCluster(kfake.NumBrokers(3))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs()[0]
	}},
}

// eachCluster runs fn against our broker and against kfake.
func eachCluster(t *testing.T, fn func(t *testing.T, addr string, adm *Client)) {
	for _, cl := range clusters {
		t.Run(cl.name, func(t *testing.T) {
			addr := cl.start(t)
			fn(t, addr, newAdmin(t, addr))
		})
	}
}

func newAdmin(t *testing.T, addr string) *Client {
	t.Helper()
	adm, err := New(testCtx(t), Config{BootstrapServers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.Close() })
	return adm
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustCreate(t *testing.T, adm *Client, name string, partitions int32) {
	t.Helper()
	if _, err := adm.CreateTopics(testCtx(t), false, NewTopic{Name: name, Partitions: partitions, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
}

// produce writes n records to each partition of topic, the i-th with
// timestamp base+i seconds.
func produce(t *testing.T, addr, topic string, partitions int32, n int, base time.Time) {
	t.Helper()
	p, err := producer.New(producer.Config{BootstrapServers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	for part := range partitions {
		for i := range n {
			r := &kafkit.Record{Topic: topic, Partition: part, Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
			if err := p.SendSync(testCtx(t), r); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestTopics(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string, adm *Client) {
		ctx := testCtx(t)
		res, err := adm.CreateTopics(ctx, false, NewTopic{Name: "orders", Partitions: 3, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "3600000"}})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Partitions != -1 && res[0].Partitions != 3 {
			t.Errorf("created with %d partitions, want 3", res[0].Partitions)
		}

		_, err = adm.CreateTopics(ctx, false, NewTopic{Name: "orders", Partitions: 1})
		if !errors.Is(err, kerr.TopicAlreadyExists) {
			t.Fatalf("creating twice: %v, want TOPIC_ALREADY_EXISTS", err)
		}
		var ae *Error
		if !errors.As(err, &ae) || ae.Resource != "orders" || !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
			t.Errorf("error %q does not name the topic and the code", err)
		}

		if _, err := adm.CreateTopics(ctx, true, NewTopic{Name: "dry", Partitions: 1}); err != nil {
			t.Fatalf("validate only: %v", err)
		}
		names, err := adm.ListTopics(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(names, []string{"orders"}) {
			t.Errorf("topics %v, want [orders] (validate-only must not create)", names)
		}

		ds, err := adm.DescribeTopics(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		d := ds[0]
		if len(d.Partitions) != 3 || d.ReplicationFactor() != 1 {
			t.Fatalf("described %+v, want 3 partitions of replication factor 1", d)
		}
		for i, p := range d.Partitions {
			if p.Partition != int32(i) || p.Leader < 0 || len(p.ISR) != 1 || p.ISR[0] != p.Leader {
				t.Errorf("partition %d: %+v", i, p)
			}
		}

		if err := adm.CreatePartitions(ctx, false, map[string]int32{"orders": 5}); err != nil {
			t.Fatal(err)
		}
		if ds, err = adm.DescribeTopics(ctx, "orders"); err != nil || len(ds[0].Partitions) != 5 {
			t.Fatalf("after adding partitions: %v, %+v", err, ds)
		}
		if tps, err := adm.Partitions(ctx, "orders"); err != nil || len(tps) != 5 || tps[4] != (kafkit.TopicPartition{Topic: "orders", Partition: 4}) {
			t.Errorf("Partitions: %v %v", tps, err)
		}
		if err := adm.CreatePartitions(ctx, true, map[string]int32{"orders": 8}); err != nil {
			t.Errorf("validate-only partitions: %v", err)
		}
		if err := adm.CreatePartitions(ctx, false, map[string]int32{"orders": 2}); !errors.Is(err, kerr.InvalidPartitions) {
			t.Errorf("shrinking: %v, want INVALID_PARTITIONS", err)
		}

		if err := adm.DeleteTopics(ctx, "orders"); err != nil {
			t.Fatal(err)
		}
		if _, err := adm.DescribeTopics(ctx, "orders"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("describing a deleted topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
		if err := adm.DeleteTopics(ctx, "orders"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("deleting twice: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
	})
}

// TestListTopicsInternal runs on our broker only: kfake keeps group offsets
// outside any topic, so it has no internal topic to list.
func TestListTopicsInternal(t *testing.T) {
	adm := newAdmin(t, broker.NewTest(t).Addr())
	mustCreate(t, adm, "t", 1)
	// A group commit makes the broker create __consumer_offsets.
	if err := adm.AlterGroupOffsets(testCtx(t), "g", map[kafkit.TopicPartition]int64{{Topic: "t"}: 0}); err != nil {
		t.Fatal(err)
	}
	all, err := adm.ListTopics(testCtx(t), true)
	if err != nil {
		t.Fatal(err)
	}
	user, err := adm.ListTopics(testCtx(t), false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(user, []string{"t"}) {
		t.Errorf("without internal topics: %v", user)
	}
	if !slices.Contains(all, "__consumer_offsets") || !slices.Contains(all, "t") {
		t.Errorf("with internal topics: %v", all)
	}
}

func TestDescribeCluster(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string, adm *Client) {
		cl, err := adm.DescribeCluster(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if cl.ClusterID == "" || len(cl.Brokers) == 0 {
			t.Fatalf("cluster %+v", cl)
		}
		ids := make([]int32, 0, len(cl.Brokers))
		for _, b := range cl.Brokers {
			ids = append(ids, b.ID)
		}
		if !slices.Contains(ids, cl.ControllerID) {
			t.Errorf("controller %d is not one of the brokers %v", cl.ControllerID, ids)
		}
		if !slices.IsSorted(ids) {
			t.Errorf("brokers not sorted: %v", ids)
		}
	})
}

func configValue(t *testing.T, adm *Client, r ConfigResource, name string) (ConfigEntry, bool) {
	t.Helper()
	rcs, err := adm.DescribeConfigs(testCtx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rcs[0].Entries {
		if e.Name == name {
			return e, true
		}
	}
	return ConfigEntry{}, false
}

func TestDescribeConfigs(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string, adm *Client) {
		if _, err := adm.CreateTopics(testCtx(t), false, NewTopic{Name: "c", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1234"}}); err != nil {
			t.Fatal(err)
		}
		topic := ConfigResource{TopicResource, "c"}
		e, ok := configValue(t, adm, topic, "retention.ms")
		if !ok || e.Value == nil || *e.Value != "1234" || e.IsDefault {
			t.Errorf("retention.ms: %+v", e)
		}
		rcs, _ := adm.DescribeConfigs(testCtx(t), topic)
		if ov := rcs[0].Overrides(); len(ov) != 1 || ov[0].Name != "retention.ms" {
			t.Errorf("overrides %+v, want only retention.ms", ov)
		}
		if e, ok := configValue(t, adm, topic, "cleanup.policy"); !ok || *e.Value != "delete" || !e.IsDefault {
			t.Errorf("cleanup.policy: %+v", e)
		}

		cl, err := adm.DescribeCluster(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		b := ConfigResource{BrokerResource, fmt.Sprint(cl.Brokers[0].ID)}
		rcs, err = adm.DescribeConfigs(testCtx(t), b)
		if err != nil || len(rcs[0].Entries) == 0 {
			t.Errorf("broker configs: %v %+v", err, rcs)
		}
		if _, err := adm.DescribeConfigs(testCtx(t), ConfigResource{TopicResource, "nope"}); !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("unknown topic's configs: %v", err)
		}
	})
}

func TestAlterConfigs(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string, adm *Client) {
		mustCreate(t, adm, "c", 1)
		r := ConfigResource{TopicResource, "c"}
		err := adm.IncrementalAlterConfigs(testCtx(t), r, []AlterOp{{Name: "retention.ms", Op: OpSet, Value: "1000"}, {Name: "segment.ms", Op: OpSet, Value: "2000"}}, false)
		if err != nil {
			t.Fatal(err)
		}
		if e, _ := configValue(t, adm, r, "retention.ms"); e.Value == nil || *e.Value != "1000" {
			t.Errorf("after set: retention.ms %+v", e)
		}
		if err := adm.IncrementalAlterConfigs(testCtx(t), r, []AlterOp{{Name: "retention.ms", Op: OpDelete}}, false); err != nil {
			t.Fatal(err)
		}
		if e, _ := configValue(t, adm, r, "retention.ms"); !e.IsDefault || *e.Value != "604800000" {
			t.Errorf("after delete: retention.ms %+v, want the default", e)
		}
		if e, _ := configValue(t, adm, r, "segment.ms"); e.Value == nil || *e.Value != "2000" {
			t.Errorf("incremental alter changed segment.ms: %+v", e)
		}

		// The legacy AlterConfigs replaces the whole set.
		err = adm.AlterConfigs(testCtx(t), r, map[string]string{"retention.ms": "5000"}, false)
		if err != nil {
			t.Fatal(err)
		}
		if e, _ := configValue(t, adm, r, "segment.ms"); !e.IsDefault {
			t.Errorf("AlterConfigs kept segment.ms: %+v", e)
		}
		if e, _ := configValue(t, adm, r, "retention.ms"); *e.Value != "5000" {
			t.Errorf("AlterConfigs retention.ms: %+v", e)
		}
	})
}

func TestListOffsets(t *testing.T) {
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	eachCluster(t, func(t *testing.T, addr string, adm *Client) {
		mustCreate(t, adm, "o", 2)
		produce(t, addr, "o", 2, 10, base)
		tps := []kafkit.TopicPartition{{Topic: "o", Partition: 0}, {Topic: "o", Partition: 1}}
		for _, tc := range []struct {
			name string
			spec int64
			want int64
		}{
			{"earliest", kafkit.OffsetEarliest, 0},
			{"latest", kafkit.OffsetLatest, 10},
			{"timestamp", Timestamp(base.Add(3 * time.Second)), 3},
			{"timestamp between records", Timestamp(base.Add(3*time.Second + time.Millisecond)), 4},
			{"timestamp after every record", Timestamp(base.Add(time.Hour)), -1},
		} {
			got, err := adm.ListOffsets(testCtx(t), tc.spec, tps...)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			for _, tp := range tps {
				if got[tp].Offset != tc.want {
					t.Errorf("%s: %v at %d, want %d", tc.name, tp, got[tp].Offset, tc.want)
				}
			}
		}
		_, err := adm.ListOffsets(testCtx(t), kafkit.OffsetLatest, kafkit.TopicPartition{Topic: "o", Partition: 7})
		if !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("unknown partition: %v", err)
		}
	})
}

func TestDeleteRecords(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string, adm *Client) {
		mustCreate(t, adm, "d", 1)
		produce(t, addr, "d", 1, 10, time.Now())
		tp := kafkit.TopicPartition{Topic: "d"}
		low, err := adm.DeleteRecords(testCtx(t), map[kafkit.TopicPartition]int64{tp: 4})
		if err != nil {
			t.Fatal(err)
		}
		if low[tp] != 4 {
			t.Errorf("low watermark %d, want 4", low[tp])
		}
		got, err := adm.ListOffsets(testCtx(t), kafkit.OffsetEarliest, tp)
		if err != nil || got[tp].Offset != 4 {
			t.Errorf("earliest after delete: %v %+v", err, got)
		}
		if _, err := adm.DeleteRecords(testCtx(t), map[kafkit.TopicPartition]int64{tp: 11}); !errors.Is(err, kerr.OffsetOutOfRange) {
			t.Errorf("deleting past the end: %v, want OFFSET_OUT_OF_RANGE", err)
		}
		if low, err := adm.DeleteRecords(testCtx(t), map[kafkit.TopicPartition]int64{tp: kafkit.OffsetLatest}); err != nil || low[tp] != 10 {
			t.Errorf("deleting up to the high watermark: %v %v, want 10", low, err)
		}
	})
}

func TestBrokerConfigs(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string, adm *Client) {
		cl, err := adm.DescribeCluster(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		r := ConfigResource{BrokerResource, fmt.Sprint(cl.Brokers[0].ID)}
		if err := adm.IncrementalAlterConfigs(testCtx(t), r, []AlterOp{{Name: "log.retention.ms", Op: OpSet, Value: "3600000"}}, false); err != nil {
			t.Fatal(err)
		}
		if e, ok := configValue(t, adm, r, "log.retention.ms"); !ok || e.Value == nil || *e.Value != "3600000" || e.IsDefault {
			t.Errorf("log.retention.ms after set: %+v", e)
		}
		if err := adm.IncrementalAlterConfigs(testCtx(t), r, []AlterOp{{Name: "log.retention.ms", Op: OpDelete}}, false); err != nil {
			t.Fatal(err)
		}
		if e, _ := configValue(t, adm, r, "log.retention.ms"); e.Value != nil && *e.Value == "3600000" {
			t.Errorf("log.retention.ms after delete: %+v", e)
		}
		if _, err := adm.DescribeConfigs(testCtx(t), ConfigResource{BrokerResource, "x"}); err == nil {
			t.Error("a broker name that is not an id was accepted")
		}
	})
}
