package broker

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// The active controller's side of the brokers' lifecycle: registrations,
// heartbeats, fencing after broker.session.timeout.ms, controlled
// shutdown. Requests reach it on its CONTROLLER endpoint; a node that is
// not the active controller answers NOT_CONTROLLER and the broker tries
// the next.

// BrokerRegistration: v0-3 (v2 log dirs, v3 previous broker epoch).
var brokerRegistrationVersions = versions{0, 3}

// BrokerHeartbeat: v0-1.
var brokerHeartbeatVersions = versions{0, 1}

func (b *Broker) registerClusterHandlers(t *handlerTable) {
	register(t, kmsg.BrokerRegistration, brokerRegistrationVersions, b.handleBrokerRegistration)
	register(t, kmsg.BrokerHeartbeat, brokerHeartbeatVersions, b.handleBrokerHeartbeat)
	register(t, kmsg.AllocateProducerIDs, allocateProducerIDsVersions, b.handleAllocateProducerIDs)
	register(t, kmsg.WriteTxnMarkers, writeTxnMarkersVersions, b.handleWriteTxnMarkers)
	register(t, kmsg.AlterPartition, alterPartitionVersions, b.handleAlterPartition)
	register(t, kmsg.DescribeQuorum, describeQuorumVersions, b.handleDescribeQuorum)
	register(t, kmsg.UnregisterBroker, unregisterBrokerVersions, b.handleUnregisterBroker)
	register(t, kmsg.AddRaftVoter, addRaftVoterVersions, b.handleAddRaftVoter)
	register(t, kmsg.RemoveRaftVoter, removeRaftVoterVersions, b.handleRemoveRaftVoter)
}

// AllocateProducerIDs: v0 (KIP-730).
var allocateProducerIDsVersions = versions{0, 0}

// handleAllocateProducerIDs gives a registered broker the next block of
// producer ids, recorded in the metadata log so that no block is given
// twice, across controller failovers too.
func (b *Broker) handleAllocateProducerIDs(rc *reqCtx, req *kmsg.AllocateProducerIDsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	var start int64
	_, err := b.cluster.decide(rc.ctx, func(img *metadata.Image) ([]metadata.Record, error) {
		if br := img.Brokers[req.BrokerID]; br == nil || br.Epoch != req.BrokerEpoch {
			return nil, kerr.StaleBrokerEpoch
		}
		start = img.NextProducerID
		return []metadata.Record{&metadata.ProducerIDs{BrokerID: req.BrokerID, BrokerEpoch: req.BrokerEpoch, NextProducerID: start + pidBlock}}, nil
	})
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.ProducerIDStart, resp.ProducerIDLen = start, pidBlock
	return resp, nil
}

// decide runs fn on the image under the controller's lock, appends the
// records it returns and waits until they are applied here. fn runs only
// on the active controller (NOT_CONTROLLER otherwise).
func (c *cluster) decide(ctx context.Context, fn func(img *metadata.Image) ([]metadata.Record, error)) (uint64, error) {
	c.ctl.mu.Lock()
	defer c.ctl.mu.Unlock()
	if !c.q.IsController() {
		return 0, kerr.NotController
	}
	// The first decision of a term waits until this node's image has
	// everything its predecessors committed, so that it decides on the
	// latest state (and knows whether the log is empty).
	if term := c.q.Term(); c.ctl.appliedTerm != term {
		if err := c.q.Barrier(ctx); err != nil {
			if errors.Is(err, metadata.ErrNotController) {
				return 0, kerr.NotController
			}
			return 0, kerr.RequestTimedOut
		}
		c.ctl.appliedTerm = term
	}
	var recs []metadata.Record
	var err error
	c.q.View(func(img *metadata.Image) {
		if recs, err = fn(img); err == nil && img.Offset == 0 {
			recs = append(slices.Clone(c.bootstrap), recs...) // the log's first batch
		}
	})
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	off, err := c.q.Append(ctx, recs...)
	switch {
	case errors.Is(err, metadata.ErrNotController):
		return 0, kerr.NotController
	case errors.Is(err, metadata.ErrUnknownOutcome):
		// Kafka's answer for an outcome it cannot know: retriable.
		return 0, kerr.RequestTimedOut
	}
	return off, err
}

// unclean reads unclean.leader.election.enable of a topic from the image.
func unclean(img *metadata.Image) metadata.Unclean {
	return func(topic string) bool {
		return img.Configs[metadata.ConfigResource{Type: metadata.ConfigTopic, Name: topic}]["unclean.leader.election.enable"] == "true"
	}
}

func (b *Broker) handleBrokerRegistration(rc *reqCtx, req *kmsg.BrokerRegistrationRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	c := b.cluster
	if req.ClusterID != b.clusterID {
		resp.ErrorCode = kerr.InconsistentClusterID.Code
		return resp, nil
	}
	var epoch int64
	off, err := c.decide(rc.ctx, func(img *metadata.Image) ([]metadata.Record, error) {
		var out []metadata.Record
		if old := img.Brokers[req.BrokerID]; old != nil {
			if old.Incarnation == req.IncarnationID {
				epoch = old.Epoch // a retry of this registration
				return nil, nil
			}
			if !old.Fenced {
				// A new run of a broker whose last one was not fenced yet:
				// its leaderships move before it registers again.
				recs, _ := img.FenceBroker(req.BrokerID, unclean(img))
				out = recs
			}
		}
		// The epoch is past every offset applied so far: larger than any
		// earlier registration's (decisions are serialized).
		epoch = int64(img.Offset) + 1
		reg := &metadata.RegisterBroker{ID: req.BrokerID, Incarnation: req.IncarnationID, Epoch: epoch, Fenced: true}
		if req.Rack != nil {
			reg.Rack = *req.Rack
		}
		for _, l := range req.Listeners {
			reg.Listeners = append(reg.Listeners, metadata.Endpoint{Name: l.Name, Host: l.Host, Port: int32(l.Port), SecurityProtocol: l.SecurityProtocol})
		}
		return append(out, reg), nil
	})
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	if c.observerNode(req.BrokerID) {
		// A broker-only node: the metadata log goes to it from now on.
		c.ctl.membersMu.Lock()
		err := c.q.AddObserver(req.BrokerID)
		c.ctl.membersMu.Unlock()
		if err != nil {
			resp.ErrorCode = errorCode(forwardError(err))
			return resp, nil
		}
	}
	c.ctl.beatMu.Lock()
	c.ctl.lastBeat[req.BrokerID] = time.Now()
	if off > 0 {
		c.ctl.registered[req.BrokerID] = off
	}
	c.ctl.beatMu.Unlock()
	resp.BrokerEpoch = epoch
	b.log.Info("broker registered", "id", req.BrokerID, "broker_epoch", epoch)
	return resp, nil
}

func (b *Broker) handleBrokerHeartbeat(rc *reqCtx, req *kmsg.BrokerHeartbeatRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	c := b.cluster
	if !c.q.IsController() {
		resp.ErrorCode = kerr.NotController.Code
		return resp, nil
	}
	c.ctl.beatMu.Lock()
	regOffset, known := c.ctl.registered[req.BrokerID]
	c.ctl.beatMu.Unlock()
	if !known {
		regOffset = uint64(req.BrokerEpoch)
	}
	caughtUp := req.CurrentMetadataOffset >= int64(regOffset)
	// check answers the heartbeat from an image and reports whether it
	// asks for a change, which only a decision makes.
	check := func(img *metadata.Image) (change bool, err error) {
		br := img.Brokers[req.BrokerID]
		switch {
		case br == nil:
			return false, kerr.BrokerIDNotRegistered
		case br.Epoch != req.BrokerEpoch:
			return false, kerr.StaleBrokerEpoch
		}
		c.ctl.beat(req.BrokerID)
		return req.WantShutdown && !br.ShuttingDown || req.WantFence && !br.Fenced ||
			!req.WantFence && !req.WantShutdown && br.Fenced && !br.ShuttingDown && caughtUp, nil
	}
	var change bool
	var err error
	c.q.View(func(img *metadata.Image) { change, err = check(img) })
	if err == nil && change {
		_, err = c.decide(rc.ctx, func(img *metadata.Image) ([]metadata.Record, error) {
			if change, err := check(img); err != nil || !change {
				return nil, err
			}
			br := img.Brokers[req.BrokerID]
			switch {
			case req.WantShutdown && !br.ShuttingDown:
				// Its leaderships move and it is fenced at once (Kafka's
				// SHUTDOWN_NOW once it leads nothing, which it does not
				// after these records): Metadata stops listing it now
				// rather than a session timeout later, so clients holding
				// it as a group or transaction coordinator look for the
				// new one.
				recs, err := img.ShutDownBroker(req.BrokerID, unclean(img))
				fenced := true
				return append(recs, &metadata.BrokerChange{ID: req.BrokerID, Epoch: br.Epoch, Fenced: &fenced}), err
			case req.WantFence && !br.Fenced:
				return img.FenceBroker(req.BrokerID, unclean(img))
			}
			return img.UnfenceBroker(req.BrokerID)
		})
	}
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.IsCaughtUp = caughtUp
	c.q.View(func(img *metadata.Image) {
		br := img.Brokers[req.BrokerID]
		resp.IsFenced = br == nil || br.Fenced
		resp.ShouldShutdown = req.WantShutdown && br != nil && br.ShuttingDown && !leadsAny(img, req.BrokerID)
	})
	return resp, nil
}

// beat records a heartbeat (or a registration) of broker id now.
func (s *controllerState) beat(id int32) {
	s.beatMu.Lock()
	s.lastBeat[id] = time.Now()
	s.beatMu.Unlock()
}

// expired reports whether broker id's session ran out: no heartbeat for
// session.
func (s *controllerState) expired(id int32, session time.Duration) bool {
	s.beatMu.Lock()
	defer s.beatMu.Unlock()
	last, ok := s.lastBeat[id]
	return !ok || time.Since(last) > session
}

// leadsAny reports whether broker id leads a partition.
func leadsAny(img *metadata.Image, id int32) bool {
	for _, t := range img.Topics {
		for _, p := range t.Partitions {
			if p.Leader == id {
				return true
			}
		}
	}
	return false
}

// controllerLoop fences, while this node is the active controller, every
// unfenced broker without a heartbeat for broker.session.timeout.ms. A
// node that becomes active starts every broker's session afresh, as
// Kafka's controller does.
func (c *cluster) controllerLoop() {
	defer c.wg.Done()
	session := time.Duration(c.b.cfg.BrokerSessionTimeoutMs) * time.Millisecond
	tick := min(session/8, 250*time.Millisecond)
	for c.sleep(tick) {
		active := c.q.IsController()
		c.ctl.mu.Lock()
		if active && !c.ctl.active {
			c.ctl.beatMu.Lock()
			clear(c.ctl.registered)
			c.ctl.beatMu.Unlock()
			c.q.View(func(img *metadata.Image) {
				for id := range img.Brokers {
					c.ctl.beat(id)
				}
			})
			c.ctl.balanceAt = time.Now().Add(c.balanceInterval())
		}
		c.ctl.active = active
		c.ctl.mu.Unlock()
		bootstrap := active && len(c.bootstrap) > 0
		var expired []int32
		c.q.View(func(img *metadata.Image) {
			for id, br := range img.Brokers {
				if active && !br.Fenced && c.ctl.expired(id, session) {
					expired = append(expired, id)
				}
			}
		})
		if bootstrap {
			c.bootstrapLog()
		}
		slices.Sort(expired)
		for _, id := range expired {
			ctx, cancel := context.WithTimeout(context.Background(), session)
			_, err := c.decide(ctx, func(img *metadata.Image) ([]metadata.Record, error) {
				if br := img.Brokers[id]; br == nil || br.Fenced || !c.ctl.expired(id, session) {
					return nil, nil // a heartbeat came while the decision waited
				}
				return img.FenceBroker(id, unclean(img))
			})
			cancel()
			if err == nil {
				c.b.log.Info("fenced broker: no heartbeat within broker.session.timeout.ms", "id", id)
			}
		}
		if active {
			c.maybeBalanceLeaders()
		}
	}
}
