package broker

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCreateTopicsManualAssignment: replica assignments are checked as
// Kafka's controller checks them, with its messages.
func TestCreateTopicsManualAssignment(t *testing.T) {
	b := NewTest(t)
	c := dial(t, b)
	n := b.nodeID
	for _, tc := range []struct {
		name    string
		assign  map[int32][]int32
		order   []int32 // partitions in request order
		code    int16
		message string
	}{
		{"ok", map[int32][]int32{0: {n}, 1: {n}}, []int32{1, 0}, 0, ""},
		{"gap", map[int32][]int32{0: {n}, 2: {n}}, []int32{0, 2}, kerr.InvalidReplicaAssignment.Code, "partitions should be a consecutive 0-based integer sequence"},
		{"twice", map[int32][]int32{0: {n}}, []int32{0, 0}, kerr.InvalidReplicaAssignment.Code, "Found multiple manual partition assignments for partition 0"},
		{"unknown broker", map[int32][]int32{0: {n + 7}}, []int32{0}, kerr.InvalidReplicaAssignment.Code, "The manual partition assignment includes broker 7, but no such broker is registered."},
		{"same broker twice", map[int32][]int32{0: {n, n}}, []int32{0}, kerr.InvalidReplicaAssignment.Code, "The manual partition assignment includes the broker 0 more than once."},
		{"no replicas", map[int32][]int32{0: {}}, []int32{0}, kerr.InvalidReplicaAssignment.Code, "The manual partition assignment includes an empty replica list."},
	} {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.SetVersion(5)
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "assign-"+strings.ReplaceAll(tc.name, " ", "-"), -1, -1
		for _, p := range tc.order {
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, kmsg.CreateTopicsRequestTopicReplicaAssignment{Partition: p, Replicas: tc.assign[p]})
		}
		req.Topics = append(req.Topics, rt)
		got := c.roundTrip(req).(*kmsg.CreateTopicsResponse).Topics[0]
		msg := ""
		if got.ErrorMessage != nil {
			msg = *got.ErrorMessage
		}
		if got.ErrorCode != tc.code || (tc.code != 0 && msg != tc.message) {
			t.Errorf("%s: error %d %q, want %d %q", tc.name, got.ErrorCode, msg, tc.code, tc.message)
		}
		if tc.code == 0 && got.NumPartitions != 2 {
			t.Errorf("%s: %d partitions, want 2", tc.name, got.NumPartitions)
		}
	}
}

// TestCreateTopicsThenMetadata: on a single node a topic is in the metadata
// with all its partitions, led by this node, once CreateTopics answers, as
// Kafka's CreateTopics returns once the topic is in the metadata. (kafka-go's
// waitForTopic logs "0 partitions" for a few seconds after its CreateTopics:
// that is its Transport answering Metadata from a cache it refreshes every
// 0-6 s, no request reaches the broker.)
func TestCreateTopicsThenMetadata(t *testing.T) {
	b := NewTest(t)
	c := dial(t, b)
	create := kmsg.NewPtrCreateTopicsRequest()
	create.SetVersion(7)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "fresh", 3, 1
	create.Topics = append(create.Topics, rt)
	if got := c.roundTrip(create).(*kmsg.CreateTopicsResponse).Topics[0]; got.ErrorCode != 0 {
		t.Fatalf("CreateTopics: error %d", got.ErrorCode)
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(12)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("fresh")
	meta.Topics = append(meta.Topics, mt)
	got := c.roundTrip(meta).(*kmsg.MetadataResponse).Topics[0]
	if got.ErrorCode != 0 || len(got.Partitions) != 3 {
		t.Fatalf("Metadata right after CreateTopics: error %d, %d partitions, want 3", got.ErrorCode, len(got.Partitions))
	}
	for _, p := range got.Partitions {
		if p.ErrorCode != 0 || p.Leader != b.nodeID || len(p.ISR) != 1 {
			t.Errorf("partition %d: error %d leader %d isr %v", p.Partition, p.ErrorCode, p.Leader, p.ISR)
		}
	}
}
