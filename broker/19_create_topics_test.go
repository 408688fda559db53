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
