package broker

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// electResult is one partition's answer, flattened for comparison.
type electResult struct {
	topic     string
	partition int32
	code      int16
	msg       string
}

func electLeaders(t *testing.T, b *Broker, v int16, typ int8, topics map[string][]int32, null bool) (*kmsg.ElectLeadersResponse, []electResult) {
	t.Helper()
	req := kmsg.NewPtrElectLeadersRequest()
	req.SetVersion(v)
	req.ElectionType = typ
	if !null {
		req.Topics = []kmsg.ElectLeadersRequestTopic{}
	}
	for topic, parts := range topics {
		req.Topics = append(req.Topics, kmsg.ElectLeadersRequestTopic{Topic: topic, Partitions: parts})
	}
	resp := sendVersioned(t, b, req).(*kmsg.ElectLeadersResponse)
	var got []electResult
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			r := electResult{topic: rt.Topic, partition: p.Partition, code: p.ErrorCode}
			if p.ErrorMessage != nil {
				r.msg = *p.ErrorMessage
			}
			got = append(got, r)
		}
	}
	return resp, got
}

func TestElectLeaders(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "el", 2)
	createTestTopic(t, b, "el2", 1)
	for v := electLeadersVersions.min; v <= electLeadersVersions.max; v++ {
		types := []int8{0}
		if v >= 1 {
			types = append(types, 1) // unclean: every partition has a leader
		}
		for _, typ := range types {
			resp, got := electLeaders(t, b, v, typ, map[string][]int32{"el": {0, 1, 5}}, false)
			want := []electResult{
				{"el", 0, kerr.ElectionNotNeeded.Code, electionNotNeeded},
				{"el", 1, kerr.ElectionNotNeeded.Code, electionNotNeeded},
				{"el", 5, kerr.UnknownTopicOrPartition.Code, "No such partition as el-5"},
			}
			if resp.ErrorCode != 0 || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("v%d type %d: top-level %v, %v\nwant %v", v, typ, kerr.ErrorForCode(resp.ErrorCode), got, want)
			}
		}
		_, got := electLeaders(t, b, v, 0, map[string][]int32{"nope": {0}}, false)
		if want := []electResult{{"nope", 0, kerr.UnknownTopicOrPartition.Code, "No such topic as nope"}}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("v%d unknown topic: %v", v, got)
		}

		// All partitions: every topic is listed, none of its partitions
		// (they all have their preferred leader already).
		resp, got := electLeaders(t, b, v, 0, nil, true)
		var names []string
		for _, rt := range resp.Topics {
			names = append(names, rt.Topic)
		}
		if fmt.Sprint(names) != "[el el2]" || len(got) != 0 {
			t.Errorf("v%d all partitions: topics %v, partitions %v", v, names, got)
		}
		// An empty list asks for nothing.
		if resp, _ := electLeaders(t, b, v, 0, nil, false); len(resp.Topics) != 0 {
			t.Errorf("v%d empty list: %+v", v, resp.Topics)
		}
	}

	resp, got := electLeaders(t, b, 2, 7, map[string][]int32{"el": {0}}, false)
	want := []electResult{{"el", 0, kerr.InvalidRequest.Code, "Unknown election type 7"}}
	if resp.ErrorCode != kerr.InvalidRequest.Code || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("election type 7: %v %v", kerr.ErrorForCode(resp.ErrorCode), got)
	}
}
