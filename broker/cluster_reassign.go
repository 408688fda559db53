package broker

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// Partition reassignments on a cluster: the active controller records
// them in the metadata image (metadata.Image.Reassign) and the leader's
// AlterPartition completes them once the new replicas are in the ISR;
// another node forwards AlterPartitionReassignments to the controller.
// ListPartitionReassignments reads the image.

func (c *cluster) alterReassignments(rc *reqCtx, req *kmsg.AlterPartitionAssignmentsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	if !c.q.IsController() {
		ctx, cancel := context.WithTimeout(rc.ctx, localWait)
		defer cancel()
		fwd, err := c.toController(ctx, req, func(r kmsg.Response) int16 { return r.(*kmsg.AlterPartitionAssignmentsResponse).ErrorCode })
		if err != nil {
			resp.ErrorCode = errorCode(forwardError(err))
			return resp, nil
		}
		fwd.SetVersion(rc.version)
		return fwd, nil
	}
	allowRF := rc.version < 1 || req.AllowReplicationFactorChange
	errs := map[string]map[int32]error{}
	_, err := c.decide(rc.ctx, func(img *metadata.Image) ([]metadata.Record, error) {
		var out []metadata.Record
		for _, rt := range req.Topics {
			errs[rt.Topic] = map[int32]error{}
			for _, rp := range rt.Partitions {
				ch, err := img.Reassign(rt.Topic, rp.Partition, rp.Replicas, allowRF)
				errs[rt.Topic][rp.Partition] = err
				if ch != nil {
					out = append(out, ch)
				}
			}
		}
		return out, nil
	})
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			if err := errs[rt.Topic][rp.Partition]; err != nil {
				sp.ErrorCode = errorCode(err)
				// Kafka's message where the controller has one, none for a
				// bare code (NO_REASSIGNMENT_IN_PROGRESS).
				var te *topicError
				if errors.As(kafkaError(err), &te) {
					sp.ErrorMessage = &te.msg
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// listReassignments lists the partitions being reassigned in this node's
// image (of the named topics, or all), as Kafka does: named topics it
// does not know, and partitions not being reassigned, are left out.
func (c *cluster) listReassignments(req *kmsg.ListPartitionReassignmentsRequest) *kmsg.ListPartitionReassignmentsResponse {
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	c.q.View(func(img *metadata.Image) {
		named := map[string][]int32{}
		if req.Topics == nil {
			for name, t := range img.Topics {
				for i := range t.Partitions {
					named[name] = append(named[name], int32(i))
				}
			}
		}
		for _, rt := range req.Topics {
			named[rt.Topic] = append(named[rt.Topic], rt.Partitions...)
		}
		for _, name := range slices.Sorted(maps.Keys(named)) {
			t := img.Topics[name]
			if t == nil {
				continue
			}
			st := kmsg.NewListPartitionReassignmentsResponseTopic()
			st.Topic = name
			for _, i := range named[name] {
				p := img.Partition(t.ID, i)
				if p == nil || len(p.Adding) == 0 && len(p.Removing) == 0 {
					continue
				}
				sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
				sp.Partition = i
				sp.Replicas, sp.AddingReplicas, sp.RemovingReplicas = slices.Clone(p.Replicas), slices.Clone(p.Adding), slices.Clone(p.Removing)
				st.Partitions = append(st.Partitions, sp)
			}
			if len(st.Partitions) > 0 {
				resp.Topics = append(resp.Topics, st)
			}
		}
	})
	return resp
}
