package broker

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// electLeaders is ElectLeaders on a cluster, decided by the active
// controller as KRaft's ReplicationControlManager does; another node
// forwards the request to it. PREFERRED moves each named partition's
// leadership (every partition's with a null list) to its first replica
// where that one is live and in the ISR; UNCLEAN gives a leader to each
// partition that has none, from outside the ISR if no member is live
// (whatever unclean.leader.election.enable says: the operator asked).
func (c *cluster) electLeaders(rc *reqCtx, req *kmsg.ElectLeadersRequest) (kmsg.Response, error) {
	if !c.q.IsController() {
		ctx, cancel := context.WithTimeout(rc.ctx, localWait)
		defer cancel()
		resp, err := c.toController(ctx, req, func(r kmsg.Response) int16 { return r.(*kmsg.ElectLeadersResponse).ErrorCode })
		if err != nil {
			r := req.ResponseKind().(*kmsg.ElectLeadersResponse)
			r.ErrorCode = errorCode(forwardError(err))
			return r, nil
		}
		resp.SetVersion(rc.version)
		return resp, nil
	}
	var named map[string][]int32
	if req.Topics != nil {
		named = map[string][]int32{}
		for _, rt := range req.Topics {
			named[rt.Topic] = append(named[rt.Topic], rt.Partitions...)
		}
	}
	elect, strategy, unavailable := (*metadata.Image).ElectPreferred, "PreferredLeaderElectionStrategy", kerr.PreferredLeaderNotAvailable
	if req.ElectionType == 1 {
		elect, strategy, unavailable = (*metadata.Image).ElectUnclean, "UncleanLeaderElectionStrategy", kerr.EligibleLeadersNotAvailable
	}
	var notNeeded, failed map[string][]int32
	elected := map[string][]int32{}
	_, err := c.decide(rc.ctx, func(img *metadata.Image) ([]metadata.Record, error) {
		var out []metadata.Record
		out, notNeeded, failed = elect(img, named)
		for _, r := range out {
			ch := r.(*metadata.PartitionChange)
			name := img.TopicsByID[ch.TopicID].Name
			elected[name] = append(elected[name], ch.Partition)
		}
		return out, nil
	})
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	result := func(topic string, p int32) (int16, string) {
		switch {
		case slices.Contains(elected[topic], p):
			return 0, ""
		case slices.Contains(notNeeded[topic], p):
			return kerr.ElectionNotNeeded.Code, electionNotNeeded
		case !slices.Contains(failed[topic], p):
			return kerr.UnknownServerError.Code, ""
		}
		if c.checkLeader(topic, p, -1).code == kerr.UnknownTopicOrPartition.Code {
			return kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("No such partition as %s-%d", topic, p)
		}
		return unavailable.Code, fmt.Sprintf("Failed to elect leader for partition %s-%d under strategy %s", topic, p, strategy)
	}
	if req.Topics == nil {
		// As Kafka, every partition but those that needed no election.
		shown := maps.Clone(failed)
		for name, ps := range elected {
			shown[name] = append(shown[name], ps...)
		}
		for _, name := range slices.Sorted(maps.Keys(shown)) {
			ps := slices.Sorted(slices.Values(shown[name]))
			resp.Topics = append(resp.Topics, electionResults(kmsg.ElectLeadersRequestTopic{Topic: name, Partitions: ps}, func(p int32) (int16, string) { return result(name, p) }))
		}
		return resp, nil
	}
	for _, rt := range req.Topics {
		resp.Topics = append(resp.Topics, electionResults(rt, func(p int32) (int16, string) { return result(rt.Topic, p) }))
	}
	return resp, nil
}
