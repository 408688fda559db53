package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// AddRaftVoter (v0) and RemoveRaftVoter (v0): KIP-853's controller
// membership changes, what kafka-metadata-quorum add-controller and
// remove-controller send. Served on a cluster only.
//
// As in Kafka, the active controller answers (KafkaRaftClient's
// handleAddVoterRequest, AddVoterHandler, RemoveVoterHandler): another
// controller answers NOT_LEADER_OR_FOLLOWER on its CONTROLLER listener,
// and a broker forwards the request to the active controller
// (KafkaApis forwardToControllerOrFail). ALTER on the cluster is asked of
// the principal (ControllerApis' handleAddRaftVoter).
//
// A static quorum (controller.quorum.voters) is Kafka's kraft.version 0:
// its voters are the configuration's, and a change answers
// UNSUPPORTED_VERSION, as AddVoterHandler does.
//
// The change is hashicorp/raft's (metadata.Quorum.AddVoter, RemoveVoter):
// the new voter's Raft member is reached at its endpoint for this node's
// controller listener name. Raft's configuration keeps no directory id,
// so a RemoveRaftVoter's directory id is not checked against the one the
// voter was added with.
var (
	addRaftVoterVersions    = versions{0, 0}
	removeRaftVoterVersions = versions{0, 0}
)

func (b *Broker) handleAddRaftVoter(rc *reqCtx, req *kmsg.AddRaftVoterRequest) (kmsg.Response, error) {
	if fwd, ok := b.cluster.forwardVoterChange(rc, req); ok {
		return fwd, nil
	}
	resp := req.ResponseKind().(*kmsg.AddRaftVoterResponse)
	e, msg := b.voterChangeChecks(req.ClusterID, req.VoterID, req.VoterDirectoryID, "Add", "adding")
	if e == nil {
		name := b.cfg.controllerNames()[0]
		var addr string
		for _, l := range req.Listeners {
			if l.Name == name {
				addr = net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
			}
		}
		if addr == "" {
			e, msg = kerr.InvalidRequest, fmt.Sprintf("Add voter request didn't include the endpoint for the default listener %s", name)
		} else {
			ctx, cancel := context.WithTimeout(rc.ctx, voterChangeTimeout(req.TimeoutMillis))
			defer cancel()
			err := b.cluster.q.AddVoter(ctx, req.VoterID, addr)
			if err == nil {
				b.log.Info("controller added to the metadata quorum", "id", req.VoterID, "address", addr)
			}
			e, msg = voterChangeError(err)
		}
	}
	setVoterChangeError(&resp.ErrorCode, &resp.ErrorMessage, e, msg)
	return resp, nil
}

func (b *Broker) handleRemoveRaftVoter(rc *reqCtx, req *kmsg.RemoveRaftVoterRequest) (kmsg.Response, error) {
	if fwd, ok := b.cluster.forwardVoterChange(rc, req); ok {
		return fwd, nil
	}
	resp := req.ResponseKind().(*kmsg.RemoveRaftVoterResponse)
	e, msg := b.voterChangeChecks(req.ClusterID, req.VoterID, req.VoterDirectoryID, "Remove", "removing")
	if e == nil {
		ctx, cancel := context.WithTimeout(rc.ctx, localWait)
		defer cancel()
		err := b.cluster.q.RemoveVoter(ctx, req.VoterID)
		if err == nil {
			b.log.Info("controller removed from the metadata quorum", "id", req.VoterID)
		}
		e, msg = voterChangeError(err)
	}
	setVoterChangeError(&resp.ErrorCode, &resp.ErrorMessage, e, msg)
	return resp, nil
}

// setVoterChangeError puts a voter change's outcome (none when e is nil)
// into its answer.
func setVoterChangeError(code *int16, message **string, e *kerr.Error, msg string) {
	if e != nil {
		*code = e.Code
	}
	if msg != "" {
		*message = &msg
	}
}

// forwardVoterChange sends a voter change that came in on a broker's
// listener to the active controller; ok is false where this node answers
// itself (on its controller listener).
func (c *cluster) forwardVoterChange(rc *reqCtx, req kmsg.Request) (kmsg.Response, bool) {
	if rc.listener == controllerListener {
		return nil, false
	}
	code := func(r kmsg.Response) int16 {
		var ec int16
		switch r := r.(type) {
		case *kmsg.AddRaftVoterResponse:
			ec = r.ErrorCode
		case *kmsg.RemoveRaftVoterResponse:
			ec = r.ErrorCode
		}
		if ec == kerr.NotLeaderForPartition.Code {
			return kerr.NotController.Code // a controller that lost the leadership meanwhile: ask the next
		}
		return ec
	}
	ctx, cancel := context.WithTimeout(rc.ctx, localWait)
	defer cancel()
	resp, err := c.toController(ctx, req, code)
	if err != nil {
		e := forwardError(err)
		resp = errorResponse(req, kerr.ErrorForCode(errorCode(e)).(*kerr.Error), *errorMessage(e))
	}
	resp.SetVersion(rc.version)
	return resp, true
}

// voterChangeChecks are KafkaRaftClient's checks before a voter change,
// in its order: the cluster id, if given, is this cluster's, this node
// leads, the request names a voter, and the quorum is dynamic (Kafka's
// kraft.version 1). verb and doing name the change in Kafka's messages.
func (b *Broker) voterChangeChecks(clusterID *string, id int32, dir [16]byte, verb, doing string) (*kerr.Error, string) {
	if clusterID != nil && *clusterID != b.clusterID {
		return kerr.InconsistentClusterID, fmt.Sprintf("The given id \"%s\" doesn't match the cluster id \"%s\"", *clusterID, b.clusterID)
	}
	if !b.cluster.q.IsController() {
		return kerr.NotLeaderForPartition, ""
	}
	if id < 0 || dir == ([16]byte{}) {
		return kerr.InvalidRequest, verb + " voter request didn't include a valid voter"
	}
	if !b.cfg.dynamicQuorum() {
		return kerr.UnsupportedVersion, "Cluster doesn't support " + doing + " voter because the kraft.version feature is 0"
	}
	return nil, ""
}

// voterChangeTimeout is an AddRaftVoter's TimeoutMs, bounded.
func voterChangeTimeout(ms int32) time.Duration {
	if ms <= 0 {
		return localWait
	}
	return min(time.Duration(ms)*time.Millisecond, time.Minute)
}

// voterChangeError is a change's outcome on the wire.
func voterChangeError(err error) (*kerr.Error, string) {
	switch {
	case err == nil:
		return nil, ""
	case errors.Is(err, metadata.ErrDuplicateVoter):
		return kerr.DuplicateVoter, err.Error()
	case errors.Is(err, metadata.ErrVoterNotFound):
		return kerr.VoterNotFound, err.Error()
	case errors.Is(err, metadata.ErrNotController):
		return kerr.NotLeaderForPartition, ""
	case errors.Is(err, metadata.ErrVoterNotReady), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut, err.Error()
	}
	return kerr.UnknownServerError, err.Error()
}
