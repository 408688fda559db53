package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// UnregisterBroker: v0 (KIP-500's kafka-cluster.sh unregister). The
// active controller removes a broker's registration, moving its
// leaderships and ISR memberships away first as fencing does; an id that
// is not registered gets BROKER_ID_NOT_REGISTERED. Kafka refuses no live
// broker: its next heartbeat is refused and it registers again, so the
// command is for brokers that are gone for good. A broker-only node also
// leaves the metadata quorum's configuration, which stops the controller
// sending it the log. A broker forwards the request to the active
// controller; a standby controller answers NOT_CONTROLLER. Served on a
// cluster only.
var unregisterBrokerVersions = versions{0, 0}

func (b *Broker) handleUnregisterBroker(rc *reqCtx, req *kmsg.UnregisterBrokerRequest) (kmsg.Response, error) {
	c := b.cluster
	resp := req.ResponseKind().(*kmsg.UnregisterBrokerResponse)
	if rc.listener != controllerListener && !c.q.IsController() {
		ctx, cancel := context.WithTimeout(rc.ctx, localWait)
		defer cancel()
		fwd, err := c.toController(ctx, req, func(r kmsg.Response) int16 { return r.(*kmsg.UnregisterBrokerResponse).ErrorCode })
		if err != nil {
			e := forwardError(err)
			resp.ErrorCode, resp.ErrorMessage = errorCode(e), errorMessage(e)
			return resp, nil
		}
		fwd.SetVersion(rc.version)
		return fwd, nil
	}
	_, err := c.decide(rc.ctx, func(img *metadata.Image) ([]metadata.Record, error) {
		return img.UnregisterBroker(req.BrokerID, unclean(img))
	})
	if err != nil {
		resp.ErrorCode = errorCode(err) // no message, as Kafka's ControllerApis
		return resp, nil
	}
	c.ctl.beatMu.Lock()
	delete(c.ctl.lastBeat, req.BrokerID)
	delete(c.ctl.registered, req.BrokerID)
	c.ctl.beatMu.Unlock()
	b.log.Info("broker unregistered", "id", req.BrokerID)
	if c.observerNode(req.BrokerID) {
		c.ctl.membersMu.Lock()
		registered := false
		c.q.View(func(img *metadata.Image) { registered = img.Brokers[req.BrokerID] != nil })
		// A live broker that registered again since keeps its place.
		// Otherwise the registration is gone whatever happens here: a
		// controller that cannot drop the member keeps sending it the
		// log, harmlessly.
		if !registered {
			if err := c.q.RemoveObserver(req.BrokerID); err != nil {
				b.log.Warn("removing an unregistered broker from the metadata quorum", "id", req.BrokerID, "err", err)
			}
		}
		c.ctl.membersMu.Unlock()
	}
	return resp, nil
}
