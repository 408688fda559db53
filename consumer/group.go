package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// group is the consumer's membership in group.id, on the classic protocol
// or (group848.go) on the consumer protocol of KIP-848.
// Its goroutine (run) owns owned and joined; the fields under mu are also
// read by commits from other goroutines.
type group struct {
	c         *Consumer
	assignors []assignor
	eager     bool // some configured assignor is not cooperative: revoke everything before joining

	ctx    context.Context // cancelled by close; stops run
	cancel context.CancelFunc
	rejoin chan struct{} // capacity 1: subscription or metadata changed, or a commit saw a rebalance
	lost   chan struct{} // capacity 1: a commit found this membership gone (failure says why)
	done   chan struct{} // closed when run returns; nil until start

	mu         sync.Mutex // guards coord, memberID, generation, stable, failure
	coord      int32      // -1 while unknown
	memberID   string
	generation int32
	stable     bool  // SyncGroup completed for generation: commits may carry it (Java's generationIfStable)
	failure    error // what a commit saw when it signalled lost

	// Owned by run.
	pending *pollEvent              // the callback run waits for, abandoned if the membership ends meanwhile
	owned   []kafkit.TopicPartition // what this member owns in the current generation
	joined  map[string]int32        // subscribed topics → partition counts at the last join
	absent  bool                    // a topic subscribed by name had no metadata at the last join
	ids848  topicIDMap              // topic ids of the last consumer-protocol heartbeat
}

func newGroup(c *Consumer) (*group, error) {
	g := &group{c: c, coord: -1, generation: -1, rejoin: make(chan struct{}, 1), lost: make(chan struct{}, 1)}
	for _, name := range c.cfg.PartitionAssignmentStrategy {
		a, err := assignorByName(name)
		if err != nil {
			return nil, err
		}
		g.assignors = append(g.assignors, a)
		if !a.cooperative() {
			g.eager = true
		}
	}
	g.ctx, g.cancel = context.WithCancel(c.ctx)
	return g, nil
}

// start runs the membership goroutine on the first subscription and asks for
// a rejoin on later ones. Called with c.mu held.
func (g *group) start() {
	if g.done != nil {
		g.requestRejoin()
		return
	}
	g.done = make(chan struct{})
	if g.is848() {
		g.c.wg.Go(g.run848)
		return
	}
	g.c.wg.Go(g.run)
}

func (g *group) requestRejoin() { signal(g.rejoin) }

func (g *group) instanceID() *string {
	if id := g.c.cfg.GroupInstanceID; id != "" {
		return &id
	}
	return nil
}

// identity returns the current membership: generation, member id, instance
// id (the generation may still be syncing).
func (g *group) identity() (int32, string, *string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.generation, g.memberID, g.instanceID()
}

// membership is what a commit carries: the generation it was made in.
type membership struct {
	generation int32
	memberID   string
	instanceID *string
	// epochs: generation is a KIP-848 member epoch, which moves on
	// without ending the membership; a commit carries the latest.
	epochs bool
}

// stableIdentity returns the membership commits may carry, and false while
// the member is joining, syncing or has lost its membership: as Java's
// consumer, it sends no commit then.
func (g *group) stableIdentity() (membership, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return membership{g.generation, g.memberID, g.instanceID(), g.is848()}, g.stable
}

func (g *group) setMember(id string, generation int32) {
	g.mu.Lock()
	g.memberID, g.generation, g.stable = id, generation, false
	g.mu.Unlock()
}

func (g *group) setStable() {
	g.mu.Lock()
	g.stable = true
	g.mu.Unlock()
}

// resetLocked forgets the membership as the coordinator asked: a new member
// id after UNKNOWN_MEMBER_ID, a new generation otherwise. Called with g.mu
// held.
func (g *group) resetLocked(err error) {
	if errors.Is(err, kerr.UnknownMemberID) {
		g.memberID = ""
	}
	g.generation, g.stable = -1, false
}

// commitRejected handles a membership error on a commit made in generation
// gen. UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION and FENCED_INSTANCE_ID end the
// membership and the membership goroutine hands the partitions to OnLost;
// REBALANCE_IN_PROGRESS asks for a rejoin. An error about a generation the
// member has already left changes nothing (Java's generationUnchanged).
func (g *group) commitRejected(gen int32, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.generation != gen || gen < 0 {
		return
	}
	if errors.Is(err, kerr.RebalanceInProgress) {
		g.requestRejoin()
		return
	}
	g.resetLocked(err)
	g.failure = err
	signal(g.lost)
}

// takeFailure returns what a commit saw when it signalled lost.
func (g *group) takeFailure() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.failure
	g.failure = nil
	if errors.Is(err, kerr.FencedInstanceID) {
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	return err
}

// coordinator returns the group coordinator, finding it when unknown.
func (c *Consumer) coordinator(ctx context.Context) (int32, error) {
	g := c.group
	if g == nil {
		return -1, ErrNoGroup
	}
	g.mu.Lock()
	coord := g.coord
	g.mu.Unlock()
	if coord >= 0 {
		return coord, nil
	}
	coord, err := c.cl.FindCoordinator(ctx, 0, c.cfg.GroupID)
	if err != nil {
		return -1, err
	}
	g.mu.Lock()
	g.coord = coord
	g.mu.Unlock()
	return coord, nil
}

// lostCoordinator forgets coord (NOT_COORDINATOR, connection failure) so the
// next call looks it up again.
func (c *Consumer) lostCoordinator(coord int32) {
	if g := c.group; g != nil {
		g.mu.Lock()
		if g.coord == coord {
			g.coord = -1
		}
		g.mu.Unlock()
	}
}

// errRejoin means the group started another rebalance during ours.
var errRejoin = errors.New("rejoin")

// errPollTimeout means Poll was not called within max.poll.interval.ms.
var errPollTimeout = errors.New("Poll not called within max.poll.interval.ms")

// lostMembership reports whether err means the coordinator no longer knows
// this membership: what it owned may already belong to others.
func lostMembership(err error) bool {
	return errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.IllegalGeneration)
}

// run is the membership goroutine: join, sync, heartbeat, repeat. Every wait
// in it (callbacks, joins, syncs, the stable phase) watches the heartbeat's
// errors, the commits' and max.poll.interval.ms, as Java's coordinator does.
func (g *group) run() {
	defer close(g.done)
	bo := client.NewBackoff(g.c.cfg.RetryBackoff, g.c.cfg.RetryBackoffMax)
	for g.ctx.Err() == nil {
		err := g.rebalance()
		if err == nil {
			bo.Reset()
			err = g.await(nil)
		}
		switch {
		case err == nil, errors.Is(err, errRejoin):
		case errors.Is(err, errPollTimeout):
			g.leaveForPollTimeout()
		case lostMembership(err):
			// Lost, not revoked (no commit); the member rejoins once
			// Poll ran OnLost.
			g.loseAll()
		case errors.Is(err, ErrFenced):
			ev := g.queueLoss()
			g.c.setFatal(err)
			g.waitRan(ev)
			return
		case g.ctx.Err() != nil:
			return
		default:
			g.c.log.Warn("group membership", "group", g.c.cfg.GroupID, "err", err)
			if !client.IsRetriable(err) {
				g.c.reportGroupErr(err)
			}
			select {
			case <-g.ctx.Done():
				return
			case <-timerC(bo.NextBackOff()):
			}
		}
	}
}

// reportGroupErr hands a non-retriable membership failure (group
// authorization, inconsistent protocols ...) to the next Poll, once; the
// membership goroutine keeps retrying.
func (c *Consumer) reportGroupErr(err error) {
	c.mu.Lock()
	c.groupErr = fmt.Errorf("group %s: %w", c.cfg.GroupID, err)
	c.mu.Unlock()
	signal(c.wake)
}

func (c *Consumer) setFatal(err error) {
	c.mu.Lock()
	c.fatal = err
	c.mu.Unlock()
	signal(c.wake)
}

// subscription resolves the subscribed topics (matching the pattern against
// every topic for SubscribePattern) and their partition counts.
func (g *group) subscription(ctx context.Context) ([]string, map[string]int32, error) {
	c := g.c
	c.mu.Lock()
	topics, re := slices.Clone(c.subTopics), c.subPattern
	c.mu.Unlock()
	var md *client.Metadata
	var err error
	if re != nil {
		if md, err = c.cl.Metadata(ctx); err != nil {
			return nil, nil, err
		}
		for name, t := range md.Topics {
			if !t.Internal && re.MatchString(name) {
				topics = append(topics, name)
			}
		}
	} else if md, err = c.cl.Metadata(ctx, topics...); err != nil {
		return nil, nil, err
	}
	slices.Sort(topics)
	counts := make(map[string]int32)
	for _, t := range topics {
		if tm, ok := md.Topics[t]; ok && tm.Err == nil {
			counts[t] = int32(len(tm.Partitions))
		}
	}
	return topics, counts, nil
}

// rebalance runs one rebalance: (eager) revoke, JoinGroup, the leader's
// assignment, SyncGroup, then applies the result on the Poll goroutine. The
// requests end with errPollTimeout once Poll has not been called within
// max.poll.interval.ms.
func (g *group) rebalance() error {
	c := g.c
	if g.eager && len(g.owned) > 0 {
		revoked := g.owned
		if err := g.await(c.runOnPoll(func(ctx context.Context) { c.revoke(ctx, revoked) })); err != nil {
			return err
		}
		g.owned = nil
	}
	drain(g.rejoin) // this rebalance serves any rejoin asked so far
	ctx, cancel := context.WithCancelCause(g.ctx)
	defer cancel(nil)
	c.wg.Go(func() { g.watchPoll(ctx, cancel) })
	err := g.joinAndSync(ctx)
	if err != nil && errors.Is(context.Cause(ctx), errPollTimeout) {
		return errPollTimeout
	}
	return err
}

// watchPoll cancels ctx with errPollTimeout once Poll has not been called
// within max.poll.interval.ms.
func (g *group) watchPoll(ctx context.Context, cancel context.CancelCauseFunc) {
	t := time.NewTicker(g.c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if g.c.pollExpired() {
				cancel(errPollTimeout)
				return
			}
		}
	}
}

func (g *group) joinAndSync(ctx context.Context) error {
	c := g.c
	topics, counts, err := g.subscription(ctx)
	if err != nil {
		return err
	}
	g.joined = counts
	c.mu.Lock()
	g.absent = c.subPattern == nil && len(counts) < len(topics)
	c.mu.Unlock()
	coord, err := c.coordinator(ctx)
	if err != nil {
		return err
	}
	join, err := g.join(ctx, coord, topics)
	if err != nil {
		return err
	}
	var plan []kmsg.SyncGroupRequestGroupAssignment
	// SkipAssignment: a static leader rejoined an unchanged group, whose
	// assignment stands (KIP-814).
	if join.LeaderID == join.MemberID && !join.SkipAssignment {
		if plan, err = g.plan(ctx, *join.Protocol, join.Members); err != nil {
			return err
		}
	}

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.Generation, sync.MemberID, sync.InstanceID = c.cfg.GroupID, join.Generation, join.MemberID, g.instanceID()
	sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), join.Protocol
	sync.GroupAssignment = plan
	kresp, err := c.cl.RequestBroker(ctx, coord, sync)
	if err != nil {
		c.lostCoordinator(coord)
		return err
	}
	sresp := kresp.(*kmsg.SyncGroupResponse)
	if err := g.memberErr(coord, sresp.ErrorCode); err != nil {
		return fmt.Errorf("SyncGroup: %w", err)
	}
	var assignment kmsg.ConsumerMemberAssignment
	if len(sresp.MemberAssignment) > 0 {
		if err := assignment.ReadFrom(sresp.MemberAssignment); err != nil {
			return fmt.Errorf("SyncGroup: decoding the assignment: %w", err)
		}
	}
	var assigned []kafkit.TopicPartition
	for _, t := range assignment.Topics {
		for _, p := range t.Partitions {
			assigned = append(assigned, kafkit.TopicPartition{Topic: t.Topic, Partition: p})
		}
	}
	slices.SortFunc(assigned, compareTP)
	g.setStable()
	c.log.Info("joined group", "group", c.cfg.GroupID, "generation", join.Generation, "member", join.MemberID, "protocol", *join.Protocol, "partitions", len(assigned))
	return g.apply(assigned)
}

// join sends JoinGroup until the coordinator accepts this member: the first
// attempt of a dynamic member is answered MEMBER_ID_REQUIRED with the id to
// use (KIP-394).
func (g *group) join(ctx context.Context, coord int32, topics []string) (*kmsg.JoinGroupResponse, error) {
	c := g.c
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = topics
	meta.Generation = g.generationIfOwned()
	for _, tp := range g.owned {
		if n := len(meta.OwnedPartitions); n > 0 && meta.OwnedPartitions[n-1].Topic == tp.Topic {
			meta.OwnedPartitions[n-1].Partitions = append(meta.OwnedPartitions[n-1].Partitions, tp.Partition)
			continue
		}
		op := kmsg.NewConsumerMemberMetadataOwnedPartition()
		op.Topic, op.Partitions = tp.Topic, []int32{tp.Partition}
		meta.OwnedPartitions = append(meta.OwnedPartitions, op)
	}
	metaBytes := meta.AppendTo(nil)
	g.mu.Lock()
	g.stable = false // no commits until this rebalance completes
	g.mu.Unlock()
	for range 3 {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group = c.cfg.GroupID
		req.SessionTimeoutMillis = int32(c.cfg.SessionTimeout.Milliseconds())
		req.RebalanceTimeoutMillis = int32(c.cfg.MaxPollInterval.Milliseconds())
		_, req.MemberID, _ = g.identity()
		req.InstanceID = g.instanceID()
		req.ProtocolType = "consumer"
		for _, a := range g.assignors {
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name, p.Metadata = a.name(), metaBytes
			req.Protocols = append(req.Protocols, p)
		}
		kresp, err := c.cl.RequestBroker(ctx, coord, req)
		if err != nil {
			c.lostCoordinator(coord)
			return nil, err
		}
		resp := kresp.(*kmsg.JoinGroupResponse)
		if resp.ErrorCode == kerr.MemberIDRequired.Code {
			g.setMember(resp.MemberID, -1)
			continue
		}
		if err := g.memberErr(coord, resp.ErrorCode); err != nil {
			return nil, fmt.Errorf("JoinGroup: %w", err)
		}
		if resp.Protocol == nil {
			return nil, fmt.Errorf("JoinGroup: coordinator chose no protocol")
		}
		g.setMember(resp.MemberID, resp.Generation)
		return resp, nil
	}
	return nil, fmt.Errorf("JoinGroup: %w", kerr.MemberIDRequired)
}

// generationIfOwned is the generation the owned partitions come from, so the
// leader can tell stale claims (-1 when nothing is owned).
func (g *group) generationIfOwned() int32 {
	if len(g.owned) == 0 {
		return -1
	}
	gen, _, _ := g.identity()
	return gen
}

// memberErr maps a JoinGroup/SyncGroup/Heartbeat error code: the member id is
// reset when the coordinator forgot it, the coordinator when it moved, and
// FENCED_INSTANCE_ID is fatal.
func (g *group) memberErr(coord int32, code int16) error {
	err := g.c.coordinatorErr(coord, code)
	switch {
	case err == nil:
		return nil
	case lostMembership(err):
		g.mu.Lock()
		g.resetLocked(err)
		g.mu.Unlock()
	case errors.Is(err, kerr.FencedInstanceID):
		return fmt.Errorf("%w: %w", ErrFenced, err)
	case errors.Is(err, kerr.RebalanceInProgress):
		return fmt.Errorf("%w: %w", errRejoin, err)
	}
	return err
}

// plan computes the assignment as the group leader.
func (g *group) plan(ctx context.Context, protocol string, joined []kmsg.JoinGroupResponseMember) ([]kmsg.SyncGroupRequestGroupAssignment, error) {
	a, err := assignorByName(protocol)
	if err != nil {
		return nil, fmt.Errorf("group chose %w", err)
	}
	var members []*member
	topicSet := make(map[string]bool)
	for _, jm := range joined {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(jm.ProtocolMetadata); err != nil {
			return nil, fmt.Errorf("decoding the subscription of member %s: %w", jm.MemberID, err)
		}
		m := &member{id: jm.MemberID, topics: meta.Topics, generation: -1}
		if jm.InstanceID != nil {
			m.instanceID = *jm.InstanceID
		}
		if meta.Version >= 2 {
			m.generation = meta.Generation
		}
		for _, op := range meta.OwnedPartitions {
			for _, p := range op.Partitions {
				m.owned = append(m.owned, kafkit.TopicPartition{Topic: op.Topic, Partition: p})
			}
		}
		for _, t := range meta.Topics {
			topicSet[t] = true
		}
		members = append(members, m)
	}
	md, err := g.c.cl.Metadata(ctx, slices.Sorted(maps.Keys(topicSet))...)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int32)
	for t := range topicSet {
		if tm := md.Topics[t]; tm.Err == nil {
			counts[t] = int32(len(tm.Partitions))
		}
	}
	out := a.assign(members, counts)
	if a.cooperative() {
		if err := validateCooperative(members, out); err != nil {
			return nil, err
		}
	}
	plan := make([]kmsg.SyncGroupRequestGroupAssignment, 0, len(members))
	for _, m := range members {
		var ma kmsg.ConsumerMemberAssignment
		for _, tp := range out[m.id] {
			if n := len(ma.Topics); n > 0 && ma.Topics[n-1].Topic == tp.Topic {
				ma.Topics[n-1].Partitions = append(ma.Topics[n-1].Partitions, tp.Partition)
				continue
			}
			ma.Topics = append(ma.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: tp.Topic, Partitions: []int32{tp.Partition}})
		}
		plan = append(plan, kmsg.SyncGroupRequestGroupAssignment{MemberID: m.id, MemberAssignment: ma.AppendTo(nil)})
	}
	return plan, nil
}

// apply installs a new assignment on the Poll goroutine: revoke what was
// taken away (cooperative), add what is new, run the callbacks. After a
// cooperative revocation it rejoins at once so the freed partitions can be
// assigned to their new owners (KIP-429).
func (g *group) apply(assigned []kafkit.TopicPartition) error {
	c := g.c
	revoked := minus(g.owned, assigned)
	added := minus(assigned, g.owned)
	ev := c.runOnPoll(func(ctx context.Context) {
		if len(revoked) > 0 {
			c.revoke(ctx, revoked)
		}
		c.assign(added)
	})
	g.owned = assigned
	if err := g.await(ev); err != nil {
		return err
	}
	if len(revoked) > 0 && !g.eager {
		g.requestRejoin()
	}
	return nil
}

func minus(a, b []kafkit.TopicPartition) []kafkit.TopicPartition {
	var out []kafkit.TopicPartition
	for _, tp := range a {
		if !slices.Contains(b, tp) {
			out = append(out, tp)
		}
	}
	return out
}

// revoke runs on the Poll goroutine: it commits what Poll returned from the
// partitions (with enable.auto.commit), calls OnRevoked, and drops them.
func (c *Consumer) revoke(ctx context.Context, tps []kafkit.TopicPartition) {
	if !c.cfg.DisableAutoCommit {
		c.mu.Lock()
		offsets := c.consumedLocked(tps)
		c.mu.Unlock()
		if err := c.commit(ctx, offsets); err != nil {
			c.log.Warn("commit on revoke failed", "group", c.cfg.GroupID, "err", err)
		}
	}
	if c.cfg.OnRevoked != nil {
		c.cfg.OnRevoked(tps)
	}
	c.drop(tps)
}

// lose runs on the Poll goroutine when the membership was lost: the
// partitions are dropped without committing and OnLost is called.
func (c *Consumer) lose(tps []kafkit.TopicPartition) {
	if c.cfg.OnLost != nil {
		c.cfg.OnLost(tps)
	}
	c.drop(tps)
}

func (c *Consumer) drop(tps []kafkit.TopicPartition) {
	c.mu.Lock()
	for _, tp := range tps {
		delete(c.parts, tp)
	}
	c.mu.Unlock()
}

// await is every wait of a member that has joined: for ev to run on the
// Poll goroutine, or (ev nil, a stable member) for a reason to rebalance: a
// rejoin asked for, or a change in the subscription's topics or partition
// counts. Meanwhile it heartbeats every heartbeat.interval.ms, watches
// max.poll.interval.ms, and takes the membership failures commits saw. It
// returns nil when ev ran or a rebalance is due, errPollTimeout, a lost
// membership (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION), ErrFenced, or ctx's
// error; ev is then abandoned by loseAll if it has not started.
func (g *group) await(ev *pollEvent) error {
	c := g.c
	hb := time.NewTicker(c.cfg.HeartbeatInterval)
	defer hb.Stop()
	var done, rejoin <-chan struct{}
	var metaC <-chan time.Time
	var meta *time.Timer
	var checked chan bool // the subscription check under way, if any
	var next func() time.Duration
	if ev != nil {
		g.pending = ev // until it ran: queueLoss abandons it otherwise
		done = ev.done
	} else {
		rejoin = g.rejoin
		// The subscription is checked every metadata.max.age.ms; while
		// a topic subscribed by name has no metadata (Kafka answers the
		// request that auto-creates a topic without it) it is checked
		// again after retry.backoff.ms, backing off to
		// retry.backoff.max.ms, as Java's consumer refreshes metadata
		// for topics it does not know.
		next = func() time.Duration { return c.cfg.MetadataMaxAge }
		if g.absent {
			next = client.NewBackoff(c.cfg.RetryBackoff, c.cfg.RetryBackoffMax).NextBackOff
		}
		meta = time.NewTimer(next())
		defer meta.Stop()
		metaC = meta.C
	}
	for {
		select {
		case <-done:
			g.pending = nil
			return nil
		case <-g.ctx.Done():
			return g.ctx.Err()
		case <-rejoin:
			return nil
		case <-g.lost:
			return g.takeFailure()
		case <-metaC:
			// Off this goroutine: a slow Metadata call must not
			// delay heartbeats past the session timeout.
			ch, joined := make(chan bool, 1), g.joined
			c.wg.Go(func() {
				_, counts, err := g.subscription(g.ctx)
				ch <- err == nil && !maps.Equal(counts, joined)
			})
			checked = ch
		case changed := <-checked:
			if changed {
				return nil
			}
			checked = nil
			meta.Reset(next())
		case <-hb.C:
			if _, id, _ := g.identity(); id == "" {
				continue
			}
			if c.pollExpired() {
				return errPollTimeout
			}
			err := g.heartbeat()
			switch {
			case err == nil:
			case errors.Is(err, errRejoin):
				if ev == nil {
					return nil
				}
				g.requestRejoin() // once ev ran
			case lostMembership(err), errors.Is(err, ErrFenced):
				return err
			default:
				c.log.Warn("heartbeat failed", "group", c.cfg.GroupID, "err", err)
			}
		}
	}
}

func (g *group) heartbeat() error {
	c := g.c
	coord, err := c.coordinator(g.ctx)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group = c.cfg.GroupID
	req.Generation, req.MemberID, req.InstanceID = g.identity()
	kresp, err := c.cl.RequestBroker(g.ctx, coord, req)
	if err != nil {
		c.lostCoordinator(coord)
		return err
	}
	return g.memberErr(coord, kresp.(*kmsg.HeartbeatResponse).ErrorCode)
}

// queueLoss ends the membership's work on the Poll goroutine: the callback
// run was waiting for is abandoned unless it started, and the next Poll
// hands every partition the consumer still has to OnLost (as Java's
// onPartitionsLost, without committing: they may already belong to others).
func (g *group) queueLoss() *pollEvent {
	c := g.c
	if g.pending != nil {
		c.abandon(g.pending)
		g.pending = nil
	}
	g.owned = nil
	drain(g.lost)
	return c.runOnPoll(func(context.Context) {
		c.mu.Lock()
		lost := c.assignedLocked()
		c.mu.Unlock()
		if len(lost) > 0 {
			c.lose(lost)
		}
	})
}

// waitRan waits until Poll ran ev: a member that lost its membership
// rejoins only from Poll, as Java's consumer does, so a stalled application
// does not rejoin and stall the group again.
func (g *group) waitRan(ev *pollEvent) {
	select {
	case <-ev.done:
	case <-g.ctx.Done():
	}
}

func (g *group) loseAll() { g.waitRan(g.queueLoss()) }

// leaveForPollTimeout leaves the group because Poll was not called within
// max.poll.interval.ms, as Java does, so the partitions move to live
// members (a static member is not sent away: its session timeout decides);
// the next Poll loses the partitions and the member rejoins.
func (g *group) leaveForPollTimeout() {
	c := g.c
	c.log.Warn("Poll not called within max.poll.interval.ms; leaving the group", "group", c.cfg.GroupID, "max_poll_interval", c.cfg.MaxPollInterval)
	switch {
	case g.is848():
		g.leave848(g.ctx)
	case g.instanceID() == nil:
		g.leave(g.ctx)
	}
	g.setMember("", -1)
	g.loseAll()
}

// leave sends LeaveGroup for this member; failures only cost the rest of the
// group a session timeout, so they are logged.
func (g *group) leave(ctx context.Context) {
	c := g.c
	_, id, inst := g.identity()
	if id == "" {
		return
	}
	coord, err := c.coordinator(ctx)
	if err == nil {
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group, req.MemberID = c.cfg.GroupID, id
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID, m.InstanceID, m.Reason = id, inst, kmsg.StringPtr("the consumer is leaving the group")
		req.Members = []kmsg.LeaveGroupRequestMember{m}
		var kresp kmsg.Response
		if kresp, err = c.cl.RequestBroker(ctx, coord, req); err == nil {
			err = kerr.ErrorForCode(kresp.(*kmsg.LeaveGroupResponse).ErrorCode)
		}
	}
	if err != nil {
		c.log.Warn("LeaveGroup failed", "group", c.cfg.GroupID, "err", err)
	}
}

// stop stops the membership goroutine, waits for a callback the Poll
// goroutine is running (so that none runs concurrently with the ones below)
// and, for a member of a stable generation, commits (with
// enable.auto.commit), runs OnRevoked for the assignment and leaves the
// group (dynamic members). A member whose membership was lost or is
// rebalancing runs OnLost instead and commits nothing, as Java's consumer.
func (g *group) stop(ctx context.Context) error {
	c := g.c
	g.cancel()
	if g.done != nil {
		<-g.done
	}
	if err := c.abandonEvents(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	assigned := c.assignedLocked()
	offsets := c.consumedLocked(nil)
	manual := c.manual
	c.mu.Unlock()
	_, stable := g.stableIdentity()
	if !manual && g.done != nil && !stable {
		if len(assigned) > 0 {
			c.lose(assigned)
		}
		// Java's maybeLeaveGroup: a member with an id leaves even in the
		// middle of a rebalance, or the group waits a session for it.
		g.leaveGroup(ctx)
		return nil
	}
	var err error
	if !c.cfg.DisableAutoCommit {
		err = c.commit(ctx, offsets)
	}
	if !manual && g.done != nil {
		if c.cfg.OnRevoked != nil && len(assigned) > 0 {
			c.cfg.OnRevoked(assigned)
		}
		g.leaveGroup(ctx)
	}
	return err
}

// leaveGroup leaves with the protocol's request; a static member of a
// classic group stays (its session keeps its partitions for its return).
func (g *group) leaveGroup(ctx context.Context) {
	switch {
	case g.is848():
		g.leave848(ctx)
	case g.instanceID() == nil:
		g.leave(ctx)
	}
}

// reset prepares a stopped group for a new subscription. Called with c.mu
// held, after stop.
func (g *group) reset() {
	g.ctx, g.cancel = context.WithCancel(g.c.ctx)
	g.done, g.owned, g.joined = nil, nil, nil
	g.setMember("", -1)
	drain(g.rejoin)
}

func drain(ch chan struct{}) {
	select {
	case <-ch:
	default:
	}
}
