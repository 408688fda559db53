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

// electPreferred is ElectLeaders PREFERRED on a cluster: the active
// controller moves each named partition's leadership (every partition's
// with a null list) to its first replica where that one is live and in
// the ISR; another node forwards the request to it.
func (c *cluster) electPreferred(rc *reqCtx, req *kmsg.ElectLeadersRequest) (kmsg.Response, error) {
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
	var notNeeded, failed map[string][]int32
	elected := map[string][]int32{}
	_, err := c.decide(rc.ctx, func(img *metadata.Image) ([]metadata.Record, error) {
		var out []metadata.Record
		out, notNeeded, failed = img.ElectPreferred(named)
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
	if req.Topics == nil {
		// As Kafka, only the partitions whose leader changed.
		for _, name := range slices.Sorted(maps.Keys(elected)) {
			resp.Topics = append(resp.Topics, electionResults(kmsg.ElectLeadersRequestTopic{Topic: name, Partitions: elected[name]}, func(int32) (int16, string) { return 0, "" }))
		}
		return resp, nil
	}
	for _, rt := range req.Topics {
		resp.Topics = append(resp.Topics, electionResults(rt, func(p int32) (int16, string) {
			switch {
			case slices.Contains(elected[rt.Topic], p):
				return 0, ""
			case slices.Contains(notNeeded[rt.Topic], p):
				return kerr.ElectionNotNeeded.Code, electionNotNeeded
			case !slices.Contains(failed[rt.Topic], p):
				return kerr.UnknownServerError.Code, ""
			}
			if c.checkLeader(rt.Topic, p, -1).code == kerr.UnknownTopicOrPartition.Code {
				return kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("No such partition as %s-%d", rt.Topic, p)
			}
			return kerr.PreferredLeaderNotAvailable.Code, fmt.Sprintf("Failed to elect leader for partition %s-%d under strategy PreferredLeaderElectionStrategy", rt.Topic, p)
		}))
	}
	return resp, nil
}
