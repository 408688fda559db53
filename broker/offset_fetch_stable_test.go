package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetFetchRequireStable: while a transaction holds a pending offset
// for a partition, OffsetFetch with RequireStable answers that partition
// UNSTABLE_OFFSET_COMMIT (KIP-447); after the commit it returns the offset.
func TestOffsetFetchRequireStable(t *testing.T) {
	b := NewTest(t)
	c := dial(t, b)
	txnID, group := "tx", "g"

	init := kmsg.NewPtrInitProducerIDRequest()
	init.SetVersion(4)
	init.TransactionalID, init.TransactionTimeoutMillis = &txnID, 60_000
	init.ProducerID, init.ProducerEpoch = -1, -1
	// The transaction coordinator may still be loading right after start.
	ir := c.roundTrip(init).(*kmsg.InitProducerIDResponse)
	for i := 0; ir.ErrorCode == kerr.CoordinatorLoadInProgress.Code && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
		ir = c.roundTrip(init).(*kmsg.InitProducerIDResponse)
	}
	if ir.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %d", ir.ErrorCode)
	}
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.SetVersion(7)
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "in", NumPartitions: 1, ReplicationFactor: 1}}
	c.roundTrip(ct)

	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.SetVersion(3)
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, ir.ProducerID, ir.ProducerEpoch, group
	if r := c.roundTrip(add).(*kmsg.AddOffsetsToTxnResponse); r.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %d", r.ErrorCode)
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.SetVersion(3)
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = txnID, group, ir.ProducerID, ir.ProducerEpoch
	commit.Generation = -1
	commit.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "in", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 42, LeaderEpoch: -1}}}}
	if r := c.roundTrip(commit).(*kmsg.TxnOffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("TxnOffsetCommit: %d", r.Topics[0].Partitions[0].ErrorCode)
	}

	fetch := func() kmsg.OffsetFetchResponseGroupTopicPartition {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.SetVersion(8)
		req.RequireStable = true
		req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "in", Partitions: []int32{0}}}}}
		return c.roundTrip(req).(*kmsg.OffsetFetchResponse).Groups[0].Topics[0].Partitions[0]
	}
	if p := fetch(); p.ErrorCode != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("during the transaction: code %d offset %d, want UNSTABLE_OFFSET_COMMIT", p.ErrorCode, p.Offset)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.SetVersion(3)
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = txnID, ir.ProducerID, ir.ProducerEpoch, true
	if r := c.roundTrip(end).(*kmsg.EndTxnResponse); r.ErrorCode != 0 {
		t.Fatalf("EndTxn: %d", r.ErrorCode)
	}
	if p := fetch(); p.ErrorCode != 0 || p.Offset != 42 {
		t.Fatalf("after the commit: code %d offset %d, want 42", p.ErrorCode, p.Offset)
	}
}
