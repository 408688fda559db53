package broker

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describeTopicPartitions sends one request through kgo over TCP.
func describeTopicPartitions(t *testing.T, cl *kgo.Client, topics []string, limit int32, cursor *kmsg.DescribeTopicPartitionsRequestCursor) *kmsg.DescribeTopicPartitionsResponse {
	t.Helper()
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	for _, name := range topics {
		req.Topics = append(req.Topics, kmsg.DescribeTopicPartitionsRequestTopic{Topic: name})
	}
	req.ResponsePartitionLimit = limit
	req.Cursor = cursor
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// listed is a response's topics and partitions as "topic:p,p" strings.
func listed(resp *kmsg.DescribeTopicPartitionsResponse) []string {
	var out []string
	for _, rt := range resp.Topics {
		s := *rt.Topic + ":"
		for i, p := range rt.Partitions {
			if i > 0 {
				s += ","
			}
			s += fmt.Sprint(p.Partition)
		}
		out = append(out, s)
	}
	return out
}

func TestDescribeTopicPartitions(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "dtp-a", 3)
	createTestTopic(t, b, "dtp-b", 2)
	createTestTopic(t, b, "dtp-c", 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	resp := describeTopicPartitions(t, cl, []string{"dtp-b", "missing", "dtp-a", "bad/name"}, 2000, nil)
	if got := fmt.Sprint(listed(resp)); got != "[bad/name: dtp-a:0,1,2 dtp-b:0,1 missing:]" || resp.NextCursor != nil {
		t.Fatalf("named topics: %s, cursor %+v", got, resp.NextCursor)
	}
	wantCodes := []int16{kerr.InvalidTopicException.Code, 0, 0, kerr.UnknownTopicOrPartition.Code}
	for i, rt := range resp.Topics {
		if rt.ErrorCode != wantCodes[i] || rt.AuthorizedOperations != topicOperations || rt.IsInternal {
			t.Errorf("%s: %v, operations %d, internal %v", *rt.Topic, kerr.ErrorForCode(rt.ErrorCode), rt.AuthorizedOperations, rt.IsInternal)
		}
	}
	a := resp.Topics[1]
	if a.TopicID != b.topics.get("dtp-a").id {
		t.Errorf("dtp-a: topic id %x", a.TopicID)
	}
	if resp.Topics[3].TopicID != [16]byte{} {
		t.Errorf("unknown topic has an id: %x", resp.Topics[3].TopicID)
	}
	for _, p := range a.Partitions {
		if p.ErrorCode != 0 || p.LeaderID != b.nodeID || p.LeaderEpoch != 0 || fmt.Sprint(p.Replicas, p.ISR) != fmt.Sprint([]int32{b.nodeID}, []int32{b.nodeID}) ||
			len(p.OfflineReplicas) != 0 || p.EligibleLeaderReplicas == nil || len(p.EligibleLeaderReplicas) != 0 || p.LastKnownELR == nil || len(p.LastKnownELR) != 0 {
			t.Errorf("dtp-a-%d: %+v", p.Partition, p)
		}
	}

	// Pages of two partitions over every topic: the cursor carries on
	// within a topic and moves to the next one where a topic ended.
	var pages []string
	var cursor *kmsg.DescribeTopicPartitionsRequestCursor
	for range 10 {
		resp := describeTopicPartitions(t, cl, nil, 2, cursor)
		pages = append(pages, fmt.Sprint(listed(resp)))
		if resp.NextCursor == nil {
			break
		}
		cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: resp.NextCursor.Topic, Partition: resp.NextCursor.Partition}
		pages = append(pages, fmt.Sprintf("→%s:%d", cursor.Topic, cursor.Partition))
	}
	want := "[[dtp-a:0,1] →dtp-a:2 [dtp-a:2 dtp-b:0] →dtp-b:1 [dtp-b:1 dtp-c:0]]"
	if got := fmt.Sprint(pages); got != want {
		t.Errorf("pages:\n%s\nwant\n%s", got, want)
	}

	// A limit that runs out exactly at a topic's end points at the next
	// topic's first partition; named topics page the same way.
	resp = describeTopicPartitions(t, cl, []string{"dtp-c", "dtp-a"}, 3, nil)
	if got := fmt.Sprint(listed(resp)); got != "[dtp-a:0,1,2]" || resp.NextCursor == nil || resp.NextCursor.Topic != "dtp-c" || resp.NextCursor.Partition != 0 {
		t.Errorf("limit at a topic's end: %s, cursor %+v", got, resp.NextCursor)
	}
	// The cursor's topic must be among the named ones.
	resp = describeTopicPartitions(t, cl, []string{"dtp-a", "dtp-b"}, 2000, &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "dtp-c"})
	if len(resp.Topics) != 2 || resp.Topics[0].ErrorCode != kerr.InvalidRequest.Code || resp.Topics[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("cursor outside the named topics: %+v", resp.Topics)
	}
}

// topicOperations is the AclOperation bitfield of a topic with no authorizer:
// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS,
// ALTER_CONFIGS (Kafka's AclEntry.supportedOperations(TOPIC)).
const topicOperations = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
