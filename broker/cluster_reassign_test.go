package broker

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A reassignment moves data (issue 12): AlterPartitionReassignments of a
// partition of RF 1 from a to c and one of RF 2 from [a b] to [b c], both
// led by a and holding records. While the new replica c cannot fetch,
// ListPartitionReassignments lists both in progress; once it can, it
// copies every record from the leader, joins the ISR, and the controller
// completes the reassignments: the leadership leaves a (removed) at a new
// leader epoch, a is no replica any more and its local copies are emptied
// (Kafka's StopReplica with delete), and the new replicas' logs are
// byte-identical to what a had; a consumer reads every record.
func TestClusterReassignmentMovesData(t *testing.T) {
	c, paused := replicationCluster(t, 3, nil)
	cl := clusterClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const a, b, cc = int32(1), int32(2), int32(3)
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "mv", -1, -1
	rt.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{a}}, {Partition: 1, Replicas: []int32{a, b}}}
	req.Topics = append(req.Topics, rt)
	if resp, err := req.RequestWith(context.Background(), cl); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("creating mv: %v %+v", err, resp)
	}
	c.AwaitTopic("mv", 2)
	for part := range int32(2) {
		eventually(t, "a leading", func() bool { return c.Broker(a).topics.partition("mv", part).leads() })
	}
	const n = 200
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range n {
		for part := range int32(2) {
			cl.Produce(ctx, &kgo.Record{Topic: "mv", Partition: part, Value: bytes.Repeat([]byte{byte(i)}, 1+i%50)}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("record %d of partition %d: %v", i, part, err)
				}
			})
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := [2][]byte{logBytes(t, c.Broker(a), "mv", 0), logBytes(t, c.Broker(a), "mv", 1)}
	epochs := [2]int32{partitionState(c, "mv", 0).LeaderEpoch, partitionState(c, "mv", 1).LeaderEpoch}

	paused[cc].Store(true) // c cannot fetch yet: the reassignments stay in progress
	areq := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	areq.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: "mv", Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{
		{Partition: 0, Replicas: []int32{cc}}, {Partition: 1, Replicas: []int32{b, cc}},
	}}}
	aresp, err := areq.RequestWith(ctx, cl)
	if err != nil || aresp.ErrorCode != 0 {
		t.Fatalf("AlterPartitionReassignments: %v %+v", err, aresp)
	}
	for _, p := range aresp.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("reassigning partition %d: %v", p.Partition, kerr.ErrorForCode(p.ErrorCode))
		}
	}
	lresp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(lresp.Topics) != 1 || len(lresp.Topics[0].Partitions) != 2 {
		t.Fatalf("in progress: %+v, want both partitions", lresp.Topics)
	}
	for _, p := range lresp.Topics[0].Partitions {
		if !slices.Equal(p.AddingReplicas, []int32{cc}) || !slices.Equal(p.RemovingReplicas, []int32{a}) {
			t.Errorf("partition %d in progress adds %v and removes %v, want [3] and [1]", p.Partition, p.AddingReplicas, p.RemovingReplicas)
		}
	}
	paused[cc].Store(false)

	for part := range int32(2) {
		eventually(t, fmt.Sprintf("partition %d's reassignment completed", part), func() bool {
			st := partitionState(c, "mv", part)
			return len(st.Adding) == 0 && len(st.Removing) == 0 && !slices.Contains(st.Replicas, a)
		})
		st := partitionState(c, "mv", part)
		wantReplicas := [][]int32{{cc}, {b, cc}}[part]
		if !slices.Equal(st.Replicas, wantReplicas) || !slices.Equal(slices.Sorted(slices.Values(st.ISR)), wantReplicas) ||
			st.Leader == a || st.Leader < 0 || st.LeaderEpoch <= epochs[part] {
			t.Fatalf("partition %d after the move: replicas %v ISR %v leader %d epoch %d (was %d)", part, st.Replicas, st.ISR, st.Leader, st.LeaderEpoch, epochs[part])
		}
		for _, id := range wantReplicas {
			eventually(t, fmt.Sprintf("node %d's copy of partition %d", id, part), func() bool {
				l := c.Broker(id).topics.partition("mv", part).log
				return l.EndOffset() == n && l.HighWatermark() == n
			})
			if got := logBytes(t, c.Broker(id), "mv", part); !bytes.Equal(got, want[part]) {
				t.Fatalf("node %d's log of partition %d differs from the old leader's (%d vs %d bytes)", id, part, len(got), len(want[part]))
			}
		}
		eventually(t, fmt.Sprintf("node 1's copy of partition %d deleted", part), func() bool {
			l := c.Broker(a).topics.partition("mv", part).log
			return l.EndOffset() == 0 && l.Size() == 0
		})
	}

	// Clients follow the new leaders: every record is read back.
	cons := clusterClient(t, c, kgo.ConsumeTopics("mv"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 2*n && ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) { t.Errorf("fetch: %v", err) })
		got += fs.NumRecords()
	}
	if got != 2*n {
		t.Fatalf("consumed %d records, want %d", got, 2*n)
	}
}
