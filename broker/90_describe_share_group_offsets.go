package broker

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/share"
)

// DescribeShareGroupOffsets: v0-1; v1 adds the lag (KIP-1226).
var describeShareGroupOffsetsVersions = versions{0, 1}

func (b *Broker) handleDescribeShareGroupOffsets(rc *reqCtx, req *kmsg.DescribeShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
	for _, rg := range req.Groups {
		g := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		g.GroupID = rg.GroupID
		if e := b.shareCoordinatorError(rg.GroupID); e != nil {
			g.ErrorCode = e.Code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		if !b.shareCoord.IsGroup(rg.GroupID) {
			g.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "Group " + rg.GroupID + " not found."
			g.ErrorMessage = &msg
			resp.Groups = append(resp.Groups, g)
			continue
		}
		known := map[share.Key]share.PartitionOffsets{}
		for _, po := range b.shareCoord.Offsets(rg.GroupID) {
			known[po.Key] = po
		}
		describe := func(t *topic, index int32) kmsg.DescribeShareGroupOffsetsResponseGroupTopicPartition {
			p := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
			p.Partition, p.StartOffset, p.LeaderEpoch = index, -1, 0
			if index < 0 || int(index) >= len(t.partitions) {
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
				return p
			}
			if po, ok := known[share.Key{Group: rg.GroupID, Topic: t.id, Partition: index}]; ok {
				p.StartOffset = po.Start
				p.Lag = max(t.partitions[index].log.HighWatermark()-po.Start-po.Done, 0)
			}
			return p
		}
		if rg.Topics == nil {
			// Every topic the group has state for.
			byTopic := map[string][]int32{}
			for k := range known {
				if t := b.topics.getByID(k.Topic); t != nil {
					byTopic[t.name] = append(byTopic[t.name], k.Partition)
				}
			}
			for _, name := range slices.Sorted(maps.Keys(byTopic)) {
				rg.Topics = append(rg.Topics, kmsg.DescribeShareGroupOffsetsRequestGroupTopic{Topic: name, Partitions: slices.Sorted(slices.Values(byTopic[name]))})
			}
		}
		for _, rt := range rg.Topics {
			gt := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
			gt.Topic = rt.Topic
			t := b.topics.get(rt.Topic)
			for _, idx := range rt.Partitions {
				if t == nil {
					p := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
					p.Partition, p.StartOffset, p.ErrorCode = idx, -1, kerr.UnknownTopicOrPartition.Code
					gt.Partitions = append(gt.Partitions, p)
					continue
				}
				gt.TopicID = t.id
				gt.Partitions = append(gt.Partitions, describe(t, idx))
			}
			g.Topics = append(g.Topics, gt)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
