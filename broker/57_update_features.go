package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// UpdateFeatures: v0-2 (KIP-584; v1 has an upgrade type per update and
// validateOnly instead of v0's AllowDowngrade, KIP-778; v2 answers the
// top-level error alone). As Kafka's QuorumController, the active
// controller decides (metadata.Image.UpdateFeatures, Kafka's
// FeatureControlManager): the request changes every feature or none, the
// first failing update's error naming it in the top-level message, and
// on success v0-1 get one result per feature. A broker forwards the
// request to the active controller and answers once its own image shows
// the levels (or after localWait: the change is committed either way);
// a single node decides itself. ALTER on the cluster is asked of the
// principal (authz.go), as ControllerApis does.
var updateFeaturesVersions = versions{0, 2}

func (b *Broker) handleUpdateFeatures(rc *reqCtx, req *kmsg.UpdateFeaturesRequest) (kmsg.Response, error) {
	c := b.cluster
	if c != nil && rc.listener != controllerListener && !c.q.IsController() {
		return b.forwardUpdateFeatures(rc, req), nil
	}
	updates := make([]metadata.FeatureUpdate, len(req.FeatureUpdates))
	for i, u := range req.FeatureUpdates {
		updates[i] = metadata.FeatureUpdate{Feature: u.Feature, Level: u.MaxVersionLevel, UpgradeType: u.UpgradeType}
		if rc.version == 0 {
			updates[i].UpgradeType = metadata.Upgrade
			if u.AllowDowngrade {
				updates[i].UpgradeType = metadata.SafeDowngrade
			}
		}
	}
	var e *kerr.Error
	var msg string
	if c == nil {
		e, msg = b.updateFeaturesLocal(updates, req.ValidateOnly)
	} else {
		ctx, cancel := context.WithTimeout(rc.ctx, localWait)
		defer cancel()
		_, err := c.decide(ctx, func(img *metadata.Image) ([]metadata.Record, error) {
			var recs []metadata.Record
			recs, e, msg = img.UpdateFeatures(updates, req.ValidateOnly, b.nodeID, b.kraftVersion())
			return recs, nil
		})
		if err != nil {
			// NOT_CONTROLLER, REQUEST_TIMED_OUT: Kafka's handleError,
			// the error alone.
			resp := req.ResponseKind().(*kmsg.UpdateFeaturesResponse)
			resp.ErrorCode = errorCode(err)
			return resp, nil
		}
		if e == nil && !req.ValidateOnly {
			b.log.Info("finalized features updated", "updates", updates)
		}
	}
	return updateFeaturesResponse(req, rc.version, e, msg), nil
}

// updateFeaturesResponse is QuorumController.updateFeatures' answer.
func updateFeaturesResponse(req *kmsg.UpdateFeaturesRequest, version int16, e *kerr.Error, msg string) *kmsg.UpdateFeaturesResponse {
	resp := req.ResponseKind().(*kmsg.UpdateFeaturesResponse)
	if e != nil {
		resp.ErrorCode = e.Code
		resp.ErrorMessage = kmsg.StringPtr("The update failed for all features since the following feature had an error: " + msg)
		return resp
	}
	setUpdateFeaturesResults(resp, req, version)
	return resp
}

// setUpdateFeaturesResults gives v0-1 a result per feature on success;
// its message is Kafka's Errors.NONE.message(), "NONE".
func setUpdateFeaturesResults(resp *kmsg.UpdateFeaturesResponse, req *kmsg.UpdateFeaturesRequest, version int16) {
	if version > 1 || resp.ErrorCode != 0 {
		return
	}
	resp.Results = resp.Results[:0]
	for _, u := range req.FeatureUpdates {
		resp.Results = append(resp.Results, kmsg.UpdateFeaturesResponseResult{Feature: u.Feature, ErrorMessage: kmsg.StringPtr("NONE")})
	}
}

// forwardUpdateFeatures sends the request to the active controller and
// waits, on success, until this node's levels are the requested ones.
func (b *Broker) forwardUpdateFeatures(rc *reqCtx, req *kmsg.UpdateFeaturesRequest) kmsg.Response {
	ctx, cancel := context.WithTimeout(rc.ctx, localWait)
	defer cancel()
	fwd, err := b.cluster.toController(ctx, req, func(r kmsg.Response) int16 { return r.(*kmsg.UpdateFeaturesResponse).ErrorCode })
	if err != nil {
		e := forwardError(err)
		resp := req.ResponseKind().(*kmsg.UpdateFeaturesResponse)
		resp.ErrorCode, resp.ErrorMessage = errorCode(e), errorMessage(e)
		return resp
	}
	resp := fwd.(*kmsg.UpdateFeaturesResponse)
	resp.SetVersion(rc.version)
	// The controller answered the version the peer client chose.
	setUpdateFeaturesResults(resp, req, rc.version)
	if resp.ErrorCode == 0 && !req.ValidateOnly {
		// A timeout still answers the controller's success: the change
		// is committed, only this node has not applied it yet.
		awaitLocal(ctx, func() bool {
			for _, u := range req.FeatureUpdates {
				if b.featureLevel(u.Feature) != u.MaxVersionLevel {
					return false
				}
			}
			return true
		}, func() bool { return true })
	}
	return resp
}
