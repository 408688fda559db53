package client

import (
	"fmt"

	"github.com/kafkit/kafkit"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicsOf lists the distinct topics of tps in the order they first appear.
func TopicsOf(tps []kafkit.TopicPartition) []string {
	seen := make(map[string]bool)
	var out []string
	for _, tp := range tps {
		if !seen[tp.Topic] {
			seen[tp.Topic] = true
			out = append(out, tp.Topic)
		}
	}
	return out
}

// PartitionsByTopic groups the partitions of tps by topic, keeping their
// order within a topic.
func PartitionsByTopic(tps []kafkit.TopicPartition) map[string][]int32 {
	m := make(map[string][]int32)
	for _, tp := range tps {
		m[tp.Topic] = append(m[tp.Topic], tp.Partition)
	}
	return m
}

// NewOffsetFetch asks for group's committed offsets of tps, or of every
// partition the group committed when tps is empty. The request is sent at
// whatever version the broker supports, so it carries both layouts: the
// v0-v7 one and the v8+ one (a single group, topics also named by the ids
// in topicIDs for v10+).
func NewOffsetFetch(group string, tps []kafkit.TopicPartition, topicIDs map[string][16]byte) *kmsg.OffsetFetchRequest {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = group
	for t, ps := range PartitionsByTopic(tps) {
		old := kmsg.NewOffsetFetchRequestTopic()
		old.Topic, old.Partitions = t, ps
		req.Topics = append(req.Topics, old)
		gt := kmsg.NewOffsetFetchRequestGroupTopic()
		gt.Topic, gt.TopicID, gt.Partitions = t, topicIDs[t], ps
		g.Topics = append(g.Topics, gt)
	}
	req.Groups = []kmsg.OffsetFetchRequestGroup{g}
	return req
}

// ReadOffsetFetch reads the answer to a NewOffsetFetch request at any
// version: the group's error code through groupErr (which returns nil for
// no error), then each partition through fn (offset -1 means no commit),
// stopping at the first error either returns. topicNames resolves the
// topic ids of v10+. At v8+, GROUP_ID_NOT_FOUND reads as a group without
// commits: some brokers answer it instead of -1 offsets.
func ReadOffsetFetch(resp *kmsg.OffsetFetchResponse, topicNames map[[16]byte]string, groupErr func(code int16) error,
	fn func(tp kafkit.TopicPartition, offset int64, leaderEpoch int32, code int16) error,
) error {
	if resp.GetVersion() < 8 {
		if err := groupErr(resp.ErrorCode); err != nil {
			return err
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := fn(kafkit.TopicPartition{Topic: t.Topic, Partition: p.Partition}, p.Offset, p.LeaderEpoch, p.ErrorCode); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if len(resp.Groups) != 1 {
		return fmt.Errorf("OffsetFetch: %d groups in the response, want 1", len(resp.Groups))
	}
	g := resp.Groups[0]
	if g.ErrorCode == kerr.GroupIDNotFound.Code {
		return nil
	}
	if err := groupErr(g.ErrorCode); err != nil {
		return err
	}
	for _, t := range g.Topics {
		name := t.Topic
		if resp.GetVersion() >= 10 {
			name = topicNames[t.TopicID]
		}
		for _, p := range t.Partitions {
			if err := fn(kafkit.TopicPartition{Topic: name, Partition: p.Partition}, p.Offset, p.LeaderEpoch, p.ErrorCode); err != nil {
				return err
			}
		}
	}
	return nil
}
