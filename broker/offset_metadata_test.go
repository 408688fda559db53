package broker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kgoRequest sends req through a kgo client (which finds the group
// coordinator itself), retrying while the coordinator loads.
func kgoRequest[R kmsg.Response](t *testing.T, cl *kgo.Client, req kmsg.Request, loading func(R) bool) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	for {
		kresp, err := cl.Request(ctx, req)
		if err != nil {
			t.Fatalf("%T: %v", req, err)
		}
		resp := kresp.(R)
		if !loading(resp) {
			return resp
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%T: coordinator still loading", req)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestOffsetMetadataMaxBytes(t *testing.T) {
	b := NewTest(t, WithConfig(func(c *Config) {
		if err := c.Set(map[string]string{"offset.metadata.max.bytes": "10", "offsets.retention.check.interval.ms": "250"}); err != nil {
			t.Fatal(err)
		}
	}))
	createTestTopic(t, b, "meta", 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	commit := func(metadata string) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = "meta-g", -1
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "meta", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 7, LeaderEpoch: -1, Metadata: &metadata}}}}
		resp := kgoRequest(t, cl, req, func(r *kmsg.OffsetCommitResponse) bool {
			return r.Topics[0].Partitions[0].ErrorCode == kerr.CoordinatorLoadInProgress.Code
		})
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := commit(strings.Repeat("m", 11)); code != kerr.OffsetMetadataTooLarge.Code {
		t.Errorf("11 bytes of metadata over a limit of 10: %v, want OFFSET_METADATA_TOO_LARGE", kerr.ErrorForCode(code))
	}
	if code := commit(strings.Repeat("m", 10)); code != 0 {
		t.Errorf("10 bytes of metadata: %v", kerr.ErrorForCode(code))
	}
	if p := fetchOne(t, b, 5, "meta-g", "meta", 0); p.Offset != 7 || p.Metadata == nil || *p.Metadata != "mmmmmmmmmm" {
		t.Errorf("stored %d %v", p.Offset, p.Metadata)
	}

	// A transactional offset commit obeys the same limit.
	init := kmsg.NewPtrInitProducerIDRequest()
	txid := "meta-tx"
	init.TransactionalID, init.TransactionTimeoutMillis = &txid, 60000
	pid := kgoRequest(t, cl, init, func(r *kmsg.InitProducerIDResponse) bool {
		return r.ErrorCode == kerr.CoordinatorLoadInProgress.Code || r.ErrorCode == kerr.ConcurrentTransactions.Code
	})
	if pid.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v", kerr.ErrorForCode(pid.ErrorCode))
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txid, pid.ProducerID, pid.ProducerEpoch, "meta-g"
	if r := kgoRequest(t, cl, add, func(r *kmsg.AddOffsetsToTxnResponse) bool { return r.ErrorCode == kerr.CoordinatorLoadInProgress.Code }); r.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	txnCommit := func(metadata string) int16 {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = txid, "meta-g", pid.ProducerID, pid.ProducerEpoch, -1
		req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "meta", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 9, LeaderEpoch: -1, Metadata: &metadata}}}}
		resp := kgoRequest(t, cl, req, func(r *kmsg.TxnOffsetCommitResponse) bool {
			return r.Topics[0].Partitions[0].ErrorCode == kerr.CoordinatorLoadInProgress.Code
		})
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := txnCommit(strings.Repeat("t", 11)); code != kerr.OffsetMetadataTooLarge.Code {
		t.Errorf("transactional commit, 11 bytes of metadata: %v, want OFFSET_METADATA_TOO_LARGE", kerr.ErrorForCode(code))
	}
	if code := txnCommit("t"); code != 0 {
		t.Errorf("transactional commit, 1 byte of metadata: %v", kerr.ErrorForCode(code))
	}

	// Both keys show in DescribeConfigs with the values set, and the
	// group coordinator is configured with them.
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "0",
		ConfigNames: []string{"offset.metadata.max.bytes", "offsets.retention.check.interval.ms"}}}
	resp := kgoRequest(t, cl, dc, func(*kmsg.DescribeConfigsResponse) bool { return false })
	got := map[string]string{}
	for _, c := range resp.Resources[0].Configs {
		got[c.Name] = *c.Value
	}
	if got["offset.metadata.max.bytes"] != "10" || got["offsets.retention.check.interval.ms"] != "250" {
		t.Errorf("DescribeConfigs: %v", got)
	}
	if c := b.groupConfig(); c.MaxMetadataBytes != 10 || c.RetentionCheck != 250*time.Millisecond {
		t.Errorf("coordinator runs with offset.metadata.max.bytes %d, offsets.retention.check.interval.ms %v", c.MaxMetadataBytes, c.RetentionCheck)
	}
}

func TestOffsetCoordinatorKeyDefaults(t *testing.T) {
	c := DefaultConfig()
	if c.OffsetMetadataMaxBytes != 4096 || c.OffsetsRetentionCheckMs != 600000 {
		t.Errorf("defaults: offset.metadata.max.bytes %d, offsets.retention.check.interval.ms %d", c.OffsetMetadataMaxBytes, c.OffsetsRetentionCheckMs)
	}
	if err := c.Set(map[string]string{"offset.metadata.max.bytes": "-1", "offsets.retention.check.interval.ms": "0"}); err == nil ||
		!strings.Contains(err.Error(), "offset.metadata.max.bytes") || !strings.Contains(err.Error(), "offsets.retention.check.interval.ms") {
		t.Errorf("out-of-range values: %v", err)
	}
}
