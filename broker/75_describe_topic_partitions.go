package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTopicPartitions: v0 (KIP-966, Kafka 3.8; Java's Admin.describeTopics
// uses it when the broker advertises it). As Kafka's handler does: an empty
// topic list means every topic; topics are answered in name order from the
// cursor's topic on (the cursor's partition applies to that topic only); at
// most min(ResponsePartitionLimit, max.request.partition.size.limit)
// partitions are listed, and NextCursor names the first one left out (or
// the next topic, partition 0, when the limit ran out exactly at a topic's
// end). Named topics that do not exist are UNKNOWN_TOPIC_OR_PARTITION
// (INVALID_TOPIC_EXCEPTION for illegal names); with the list of all topics
// they cannot occur. A cursor whose topic is not among the named ones is
// INVALID_REQUEST for every named topic. The authorized operations are
// filled in by authz.go.
var describeTopicPartitionsVersions = versions{0, 0}

func (b *Broker) handleDescribeTopicPartitions(rc *reqCtx, req *kmsg.DescribeTopicPartitionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	var cursorTopic string
	if req.Cursor != nil {
		cursorTopic = req.Cursor.Topic
	}
	all := len(req.Topics) == 0
	var names []string
	if all {
		for _, t := range b.topics.all() {
			if t.name >= cursorTopic {
				names = append(names, t.name)
			}
		}
	} else {
		for _, rt := range req.Topics {
			if rt.Topic >= cursorTopic {
				names = append(names, rt.Topic)
			}
		}
		slices.Sort(names)
		names = slices.Compact(names)
		if req.Cursor != nil && !slices.Contains(names, cursorTopic) {
			for _, rt := range req.Topics {
				st := kmsg.NewDescribeTopicPartitionsResponseTopic()
				st.Topic = &rt.Topic
				st.ErrorCode = kerr.InvalidRequest.Code
				resp.Topics = append(resp.Topics, st)
			}
			return resp, nil
		}
	}

	remaining := min(int(b.cfg.MaxRequestPartitionLimit), int(req.ResponsePartitionLimit))
	for _, name := range names {
		if remaining == 0 {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name}
			break
		}
		if remaining < 0 { // Kafka lists nothing, and no cursor, for a negative limit
			continue
		}
		st := kmsg.NewDescribeTopicPartitionsResponseTopic()
		st.Topic = &name
		t := b.topics.get(name)
		if t == nil {
			if !all {
				st.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if validateTopicName(name) != nil {
					st.ErrorCode = kerr.InvalidTopicException.Code
				}
				st.IsInternal = name == offsetsTopic || name == txnStateTopic
				resp.Topics = append(resp.Topics, st)
			}
			continue
		}
		mt := b.topicMetadata(t)
		st.TopicID, st.IsInternal = mt.TopicID, mt.IsInternal
		start := 0
		if name == cursorTopic {
			start = int(req.Cursor.Partition)
		}
		end := min(len(mt.Partitions), start+remaining)
		for i := max(start, 0); i < end; i++ {
			st.Partitions = append(st.Partitions, describedPartition(mt.Partitions[i]))
		}
		resp.Topics = append(resp.Topics, st)
		if end < len(mt.Partitions) {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: int32(end)}
			break
		}
		remaining -= len(st.Partitions)
	}
	return resp, nil
}

// describedPartition is a Metadata partition in DescribeTopicPartitions'
// shape; the eligible leader replica lists (KIP-966) are empty because the
// ISR always holds every replica. Empty, not null: Kafka always sends lists
// here and Java's AdminClient reads them without a null check.
func describedPartition(mp kmsg.MetadataResponseTopicPartition) kmsg.DescribeTopicPartitionsResponseTopicPartition {
	p := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
	p.Partition = mp.Partition
	p.LeaderID = mp.Leader
	p.LeaderEpoch = mp.LeaderEpoch
	p.Replicas = mp.Replicas
	p.ISR = mp.ISR
	p.OfflineReplicas = mp.OfflineReplicas
	p.EligibleLeaderReplicas, p.LastKnownELR = []int32{}, []int32{}
	return p
}
