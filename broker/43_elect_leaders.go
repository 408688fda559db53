package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ElectLeaders: v0-2 (v1 adds ElectionType and a top-level error, v2 is
// flexible). One broker holds every replica and leads every partition, so
// every partition already has its preferred leader and a leader at all:
// Kafka's controller answers ELECTION_NOT_NEEDED for each named partition
// (preferred and unclean alike), UNKNOWN_TOPIC_OR_PARTITION for partitions it
// does not know, and, for a null topic list ("all partitions"), lists every
// topic with no partitions, because it leaves out the partitions whose leader
// is already the desired one. An empty (not null) list gets an empty answer,
// and an election type other than 0 or 1 is INVALID_REQUEST.
var electLeadersVersions = versions{0, 2}

// electionNotNeeded is the message Kafka sends with ELECTION_NOT_NEEDED (its
// default message for the code, which kerr spells without the period).
const electionNotNeeded = "Leader election not needed for topic partition."

func (b *Broker) handleElectLeaders(rc *reqCtx, req *kmsg.ElectLeadersRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if req.Topics != nil && len(req.Topics) == 0 {
		return resp, nil
	}
	if req.ElectionType != 0 && req.ElectionType != 1 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		msg := fmt.Sprintf("Unknown election type %d", req.ElectionType)
		for _, rt := range req.Topics {
			resp.Topics = append(resp.Topics, electionResults(rt, func(int32) (int16, string) {
				return kerr.InvalidRequest.Code, msg
			}))
		}
		return resp, nil
	}
	if b.cluster != nil {
		return b.cluster.electLeaders(rc, req)
	}
	if req.Topics == nil {
		for _, t := range b.topics.all() {
			st := kmsg.NewElectLeadersResponseTopic()
			st.Topic = t.name
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
	for _, rt := range req.Topics {
		t := b.topics.get(rt.Topic)
		resp.Topics = append(resp.Topics, electionResults(rt, func(p int32) (int16, string) {
			switch {
			case t == nil:
				return kerr.UnknownTopicOrPartition.Code, "No such topic as " + rt.Topic
			case p < 0 || int(p) >= len(t.partitions):
				return kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("No such partition as %s-%d", rt.Topic, p)
			}
			return kerr.ElectionNotNeeded.Code, electionNotNeeded
		}))
	}
	return resp, nil
}

// electionResults answers each partition of rt, in request order, with what
// result says of it.
func electionResults(rt kmsg.ElectLeadersRequestTopic, result func(int32) (int16, string)) kmsg.ElectLeadersResponseTopic {
	st := kmsg.NewElectLeadersResponseTopic()
	st.Topic = rt.Topic
	for _, p := range rt.Partitions {
		sp := kmsg.NewElectLeadersResponseTopicPartition()
		sp.Partition = p
		code, msg := result(p)
		sp.ErrorCode, sp.ErrorMessage = code, &msg
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}
