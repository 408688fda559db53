package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitV commits offset to every partition in parts of topic as a simple
// (non-member) commit at version v and returns the per-partition errors.
func commitV(t *testing.T, b *Broker, v int16, group, topic string, offset int64, parts ...int32) []int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = v
	req.Group = group
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, offset, 3
		meta := "m"
		rp.Metadata = &meta
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
	resp := sendVersioned(t, b, req).(*kmsg.OffsetCommitResponse)
	var codes []int16
	for _, p := range resp.Topics[0].Partitions {
		codes = append(codes, p.ErrorCode)
	}
	return codes
}

func createTestTopic(t *testing.T, b *Broker, name string, partitions int32) {
	t.Helper()
	if _, err := b.topics.create(createSpec{name: name, partitions: partitions, replicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
}

func TestOffsetCommitVersions(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "oc", 2)
	for v := offsetCommitVersions.min; v <= offsetCommitVersions.max; v++ {
		codes := commitV(t, b, v, "oc-g", "oc", int64(100+v), 0, 1, 2)
		if codes[0] != 0 || codes[1] != 0 || codes[2] != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("v%d: errors %v, want 0 0 UNKNOWN_TOPIC_OR_PARTITION", v, codes)
		}
		if got := fetchOne(t, b, 5, "oc-g", "oc", 1); got.Offset != int64(100+v) {
			t.Errorf("v%d: fetched %d", v, got.Offset)
		}
	}
	// Leader epochs are kept from v6 on.
	if got := fetchOne(t, b, 5, "oc-g", "oc", 0); got.LeaderEpoch != 3 || got.Metadata == nil || *got.Metadata != "m" {
		t.Errorf("epoch %d metadata %v", got.LeaderEpoch, got.Metadata)
	}
}

func TestOffsetCommitGenerationChecked(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "gen", 1)
	jr := sendVersioned(t, b, joinV(3, "gen-g", "")).(*kmsg.JoinGroupResponse)
	syncV(t, b, 3, "gen-g", jr.MemberID, jr.Generation, []byte("a"))
	tests := []struct {
		member string
		gen    int32
		want   *kerr.Error
	}{
		{jr.MemberID, jr.Generation, nil},
		{jr.MemberID, jr.Generation + 1, kerr.IllegalGeneration},
		{"ghost", jr.Generation, kerr.UnknownMemberID},
		{"", -1, kerr.UnknownMemberID}, // simple commits only to groups without members
	}
	for _, tt := range tests {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version = 7
		req.Group, req.MemberID, req.Generation = "gen-g", tt.member, tt.gen
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "gen", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
		code := sendVersioned(t, b, req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
		if (tt.want == nil && code != 0) || (tt.want != nil && code != tt.want.Code) {
			t.Errorf("commit by %q gen %d: %v, want %v", tt.member, tt.gen, kerr.ErrorForCode(code), tt.want)
		}
	}
}
