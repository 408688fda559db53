package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListPartitionReassignments: v0. AlterPartitionReassignments completes at
// once on a single broker (the only valid target is the current replica
// set), so no reassignment is ever in progress: Kafka lists only partitions
// being reassigned and leaves out named topics it does not know, so the
// answer is always empty, with a null error message. A cluster lists the
// reassignments in its metadata image.
var listPartitionReassignmentsVersions = versions{0, 0}

func (b *Broker) handleListPartitionReassignments(rc *reqCtx, req *kmsg.ListPartitionReassignmentsRequest) (kmsg.Response, error) {
	if b.cluster != nil {
		return b.cluster.listReassignments(req), nil
	}
	return req.ResponseKind(), nil
}
