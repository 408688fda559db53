package consumer

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The group membership of group.protocol=consumer (KIP-848): the member
// heartbeats with ConsumerGroupHeartbeat, the broker answers with the
// member's epoch and, when it changes, its assignment; the member revokes
// what left its assignment (committing and calling OnRevoked on the Poll
// goroutine), reports it gone in its next heartbeat, and takes new
// partitions (OnAssigned) as the broker releases them. There is no
// JoinGroup/SyncGroup barrier: partitions a member keeps are consumed
// throughout. The same group struct holds the state; generation is the
// member epoch.

// errNoTopics holds back the first heartbeat while the subscription
// matches no topic: Kafka requires a non-empty subscription to join.
var errNoTopics = errors.New("the subscription matches no topic yet")

// is848 reports whether the member uses group.protocol=consumer.
func (g *group) is848() bool { return g.c.cfg.GroupProtocol == GroupProtocolConsumer }

// newMemberID848 is a member id of the client's choosing, as
// ConsumerGroupHeartbeat v1 has members pick it (KIP-1082), in Kafka's
// Uuid format.
func newMemberID848() string {
	var u [16]byte
	rand.Read(u[:])
	return base64.RawURLEncoding.EncodeToString(u[:])
}

// setEpoch records the epoch the coordinator gave the member; a member
// with an epoch commits with it.
func (g *group) setEpoch(epoch int32) {
	g.mu.Lock()
	g.generation, g.stable = epoch, epoch > 0
	g.mu.Unlock()
}

// run848 is the membership goroutine of a consumer-protocol member. It
// keeps the member id across fenced epochs (rejoining at epoch 0) and picks
// a new one when the coordinator forgot the member, as Java's consumer.
func (g *group) run848() {
	defer close(g.done)
	c := g.c
	g.setMember(newMemberID848(), 0)
	for g.ctx.Err() == nil {
		err := g.session848()
		_, id, _ := g.identity()
		switch {
		case g.ctx.Err() != nil:
			return
		case errors.Is(err, errPollTimeout):
			g.leaveForPollTimeout()
			g.setMember(id, 0)
		case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.GroupIDNotFound):
			g.loseAll()
			g.setMember(newMemberID848(), 0)
		case errors.Is(err, kerr.FencedMemberEpoch):
			g.loseAll()
			g.setMember(id, 0)
		default: // ErrFenced, UNRELEASED_INSTANCE_ID
			// Java's consumer fails for good on both: another process
			// holds this group.instance.id.
			if !errors.Is(err, ErrFenced) {
				err = fmt.Errorf("%w: %w", ErrFenced, err)
			}
			ev := g.queueLoss()
			c.setFatal(err)
			g.waitRan(ev)
			return
		}
	}
}

// membershipOver reports whether a heartbeat error ends this membership
// (run848 decides what follows); other errors are retried in the session.
func membershipOver(err error) bool {
	for _, e := range []error{kerr.UnknownMemberID, kerr.GroupIDNotFound, kerr.FencedMemberEpoch, ErrFenced, kerr.UnreleasedInstanceID} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// session848 heartbeats and reconciles until the membership ends: a
// membership error, a poll timeout, or the group's end. A failed heartbeat
// is retried after retry.backoff.ms (growing to retry.backoff.max.ms) as a
// full one, so an assignment in a lost answer is sent again; a callback
// under way is kept meanwhile.
func (g *group) session848() error {
	c := g.c
	bo := client.NewBackoff(c.cfg.RetryBackoff, c.cfg.RetryBackoffMax)
	hb := time.NewTimer(0)
	defer hb.Stop()
	meta := time.NewTicker(c.cfg.MetadataMaxAge)
	defer meta.Stop()
	interval := c.cfg.HeartbeatInterval // until the broker tells its own
	full := true
	var target []kafkit.TopicPartition // the latest assignment not yet applied
	var ev *pollEvent                  // the callback applying a step of it
	var revoking, adding []kafkit.TopicPartition
	for {
		if ev == nil && target != nil {
			revoking, adding = minus(g.owned, target), minus(target, g.owned)
			switch {
			case len(revoking) > 0:
				// Revoke first: the broker gives these partitions to
				// others only once this member reports them gone.
				tps := revoking
				ev = c.runOnPoll(func(ctx context.Context) { c.revoke(ctx, tps) })
			case len(adding) > 0:
				tps := adding
				ev = c.runOnPoll(func(context.Context) { c.assign(tps) })
			default:
				target = nil
			}
			g.pending = ev // queueLoss abandons it if the membership ends first
		}
		var applied <-chan struct{}
		if ev != nil {
			applied = ev.done
		}
		select {
		case <-g.ctx.Done():
			return g.ctx.Err()
		case <-g.lost:
			return g.takeFailure()
		case <-g.rejoin:
			full = true
			hb.Reset(0)
		case <-meta.C:
			full = true // a pattern may match other topics now
			hb.Reset(0)
		case <-applied:
			g.pending = nil
			if len(revoking) > 0 {
				g.owned = minus(g.owned, revoking)
			} else {
				g.owned = append(g.owned, adding...)
				slices.SortFunc(g.owned, compareTP)
			}
			ev, revoking, adding = nil, nil, nil
			hb.Reset(0) // tell the coordinator at once
		case <-hb.C:
			if c.pollExpired() {
				return errPollTimeout
			}
			resp, err := g.heartbeat848(full)
			if err != nil {
				if membershipOver(err) || g.ctx.Err() != nil {
					return err
				}
				if !errors.Is(err, errNoTopics) {
					c.log.Warn("group heartbeat failed", "group", c.cfg.GroupID, "err", err)
					if !client.IsRetriable(err) {
						c.reportGroupErr(err)
					}
				}
				full = true
				hb.Reset(bo.NextBackOff())
				continue
			}
			bo.Reset()
			full = false
			g.setEpoch(resp.MemberEpoch)
			if resp.HeartbeatIntervalMillis > 0 {
				interval = time.Duration(resp.HeartbeatIntervalMillis) * time.Millisecond
			}
			if resp.Assignment != nil {
				next, err := g.assignment848(resp.Assignment)
				if err != nil {
					c.log.Warn("group assignment", "group", c.cfg.GroupID, "err", err)
					full = true // ask again once the metadata knows the topic
					hb.Reset(bo.NextBackOff())
					continue
				}
				target = next
				_, id, _ := g.identity()
				c.log.Info("group assignment", "group", c.cfg.GroupID, "member", id, "epoch", resp.MemberEpoch, "partitions", len(target), "owned", len(g.owned))
			}
			hb.Reset(interval)
		}
	}
}

// assign runs on the Poll goroutine: the partitions are fetched from their
// committed offsets and OnAssigned is called.
func (c *Consumer) assign(tps []kafkit.TopicPartition) {
	c.mu.Lock()
	for _, tp := range tps {
		if _, ok := c.parts[tp]; !ok {
			c.parts[tp] = newPartState()
		}
	}
	c.mu.Unlock()
	signal(c.fetchWake)
	if c.cfg.OnAssigned != nil {
		c.cfg.OnAssigned(tps)
	}
}

// heartbeat848 sends one ConsumerGroupHeartbeat. A full one (joining, after
// a failure, or when the subscription may have changed) carries the
// subscription and rebalance timeout; every one carries the owned
// partitions.
func (g *group) heartbeat848(full bool) (*kmsg.ConsumerGroupHeartbeatResponse, error) {
	c := g.c
	epoch, id, inst := g.identity()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch, req.InstanceID = c.cfg.GroupID, id, epoch, inst
	topics := topicsOf(g.owned)
	if full {
		subscribed, _, err := g.subscription(g.ctx)
		if err != nil {
			return nil, err
		}
		if len(subscribed) == 0 && epoch == 0 {
			return nil, errNoTopics
		}
		req.SubscribedTopicNames = append([]string{}, subscribed...)
		req.RebalanceTimeoutMillis = int32(c.cfg.MaxPollInterval.Milliseconds())
		if a := c.cfg.GroupRemoteAssignor; a != "" {
			req.ServerAssignor = &a
		}
		topics = append(topics, subscribed...)
	}
	ids, err := c.topicIDs(g.ctx, topics)
	if err != nil {
		return nil, err
	}
	g.ids848 = ids
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, tp := range g.owned {
		if n := len(req.Topics); n > 0 && req.Topics[n-1].TopicID == ids.byName[tp.Topic] {
			req.Topics[n-1].Partitions = append(req.Topics[n-1].Partitions, tp.Partition)
			continue
		}
		req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: ids.byName[tp.Topic], Partitions: []int32{tp.Partition}})
	}
	coord, err := c.coordinator(g.ctx)
	if err != nil {
		return nil, err
	}
	kresp, err := c.cl.RequestBroker(g.ctx, coord, req)
	if err != nil {
		c.lostCoordinator(coord)
		return nil, err
	}
	resp := kresp.(*kmsg.ConsumerGroupHeartbeatResponse)
	if err := c.coordinatorErr(coord, resp.ErrorCode); err != nil {
		if resp.ErrorMessage != nil {
			err = fmt.Errorf("ConsumerGroupHeartbeat: %w: %s", err, *resp.ErrorMessage)
		}
		if errors.Is(err, kerr.FencedInstanceID) {
			err = fmt.Errorf("%w: %w", ErrFenced, err)
		}
		return nil, err
	}
	return resp, nil
}

// assignment848 names the partitions of an assignment (topic ids), looking
// up ids it does not know yet.
func (g *group) assignment848(a *kmsg.ConsumerGroupHeartbeatResponseAssignment) ([]kafkit.TopicPartition, error) {
	ids := g.ids848
	// Never nil: an empty assignment is a target too (revoke everything),
	// while a nil target means none is pending.
	out := []kafkit.TopicPartition{}
	for _, t := range a.Topics {
		name, ok := ids.byID[t.TopicID]
		if !ok {
			subscribed, _, err := g.subscription(g.ctx)
			if err != nil {
				return nil, err
			}
			if ids, err = g.c.topicIDs(g.ctx, subscribed); err != nil {
				return nil, err
			}
			if name, ok = ids.byID[t.TopicID]; !ok {
				return nil, fmt.Errorf("ConsumerGroupHeartbeat assigned topic id %x, which the metadata does not know", t.TopicID)
			}
		}
		for _, p := range t.Partitions {
			out = append(out, kafkit.TopicPartition{Topic: name, Partition: p})
		}
	}
	slices.SortFunc(out, compareTP)
	return out, nil
}

// leave848 leaves the group: epoch -1, or -2 for a static member, whose
// partitions then wait for its next incarnation until the session times
// out. Failures only cost the group a session timeout, so they are logged.
func (g *group) leave848(ctx context.Context) {
	c := g.c
	_, id, inst := g.identity()
	if id == "" {
		return
	}
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.InstanceID, req.MemberEpoch = c.cfg.GroupID, id, inst, -1
	if inst != nil {
		req.MemberEpoch = -2
	}
	coord, err := c.coordinator(ctx)
	if err == nil {
		var kresp kmsg.Response
		if kresp, err = c.cl.RequestBroker(ctx, coord, req); err == nil {
			err = kerr.ErrorForCode(kresp.(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode)
		}
	}
	if err != nil {
		c.log.Warn("leaving the group failed", "group", c.cfg.GroupID, "err", err)
	}
}
