package coordinator

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup handles a JoinGroup request from client clientID at clientHost
// (as Kafka prints it, "/" + IP). It blocks until the rebalance the member
// takes part in completes, ctx is done, or Run returns. Versions 4+ of the
// request get MEMBER_ID_REQUIRED on a first join without group.instance.id
// (KIP-394).
func (c *Coordinator) JoinGroup(ctx context.Context, clientID, clientHost string, req *kmsg.JoinGroupRequest) (*kmsg.JoinGroupResponse, error) {
	ch, err := call(ctx, c, func() chan *kmsg.JoinGroupResponse { return c.join(clientID, clientHost, req) })
	if err != nil {
		return nil, err
	}
	return wait(ctx, c, ch)
}

// SyncGroup handles a SyncGroup request. A follower's call blocks until the
// leader's SyncGroup sets the generation's assignments (or the generation
// fails), ctx is done, or Run returns.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) (*kmsg.SyncGroupResponse, error) {
	ch, err := call(ctx, c, func() chan *kmsg.SyncGroupResponse { return c.sync(req) })
	if err != nil {
		return nil, err
	}
	return wait(ctx, c, ch)
}

// Heartbeat handles a Heartbeat request; it does not block on the group.
func (c *Coordinator) Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) (*kmsg.HeartbeatResponse, error) {
	return call(ctx, c, func() *kmsg.HeartbeatResponse { return c.heartbeat(req) })
}

// LeaveGroup handles a LeaveGroup request (v3+: a batch of members, by
// member id or group.instance.id); it does not block on the group.
func (c *Coordinator) LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) (*kmsg.LeaveGroupResponse, error) {
	return call(ctx, c, func() *kmsg.LeaveGroupResponse { return c.leave(req) })
}

// Responses are built at the newest version; the broker stamps the
// request's version before encoding.

func joinError(code int16, memberID string) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.ErrorCode = code
	resp.MemberID = memberID
	return resp
}

func syncError(code int16) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ErrorCode = code
	return resp
}

func ms(v int32) time.Duration { return time.Duration(v) * time.Millisecond }

// fenced reports whether instanceID belongs to a static member other than
// memberID (Kafka's isStaticMemberFenced).
func (g *group) fenced(instanceID *string, memberID string) bool {
	if instanceID == nil {
		return false
	}
	id, ok := g.static[*instanceID]
	return ok && id != memberID
}

func (c *Coordinator) join(clientID, clientHost string, req *kmsg.JoinGroupRequest) chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	fail := func(err *kerr.Error, memberID string) chan *kmsg.JoinGroupResponse {
		ch <- joinError(err.Code, memberID)
		return ch
	}
	if err := c.unavailable(req.Group); err != nil {
		return fail(err, req.MemberID)
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID, req.MemberID)
	}
	session := ms(req.SessionTimeoutMillis)
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout, req.MemberID)
	}
	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			return fail(kerr.UnknownMemberID, req.MemberID)
		}
		g = newGroup(req.Group, time.Now())
	}
	if g.consumer != nil {
		if len(g.consumer.members) > 0 {
			// Kafka would take the classic member into the consumer group
			// (group.consumer.migration.policy); kafkit keeps groups of
			// one protocol.
			return fail(kerr.InconsistentGroupProtocol, req.MemberID)
		}
		c.becomeClassic(g)
	}
	if !c.acceptJoining(g, req.MemberID) {
		return fail(kerr.GroupMaxSizeReached, req.MemberID)
	}
	if g.state == stateDead {
		return fail(kerr.CoordinatorNotAvailable, req.MemberID)
	}
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		return fail(kerr.InconsistentGroupProtocol, req.MemberID)
	}
	j := joining{req: req, clientID: clientID, clientHost: clientHost, session: session, rebalance: ms(req.RebalanceTimeoutMillis), ch: ch}
	if req.Version == 0 || j.rebalance <= 0 {
		j.rebalance = session // v0 has no rebalance timeout: Kafka uses the session timeout
	}
	if req.MemberID == "" {
		c.joinNew(g, j)
	} else {
		c.joinKnown(g, j)
	}
	return ch
}

// joining is a JoinGroup on its way through the state machine.
type joining struct {
	req                  *kmsg.JoinGroupRequest
	clientID, clientHost string
	session, rebalance   time.Duration
	ch                   chan *kmsg.JoinGroupResponse
}

// acceptJoining is Kafka's group.max.size check: members already in the
// rebalance are never turned away.
func (c *Coordinator) acceptJoining(g *group, memberID string) bool {
	m := g.members[memberID]
	switch g.state {
	case stateEmpty, stateDead:
		return true
	case statePreparingRebalance:
		return m != nil && m.join != nil || g.awaitingJoin() < c.cfg.MaxGroupSize
	default:
		return m != nil || len(g.members) < c.cfg.MaxGroupSize
	}
}

func (c *Coordinator) joinNew(g *group, j joining) {
	inst := j.req.InstanceID
	prefix := j.clientID
	if inst != nil {
		prefix = *inst
	}
	id := newMemberID(prefix)
	switch {
	case inst != nil && g.static[*inst] != "":
		c.replaceStatic(g, g.members[g.static[*inst]], id, j)
	case inst == nil && j.req.Version >= 4:
		// KIP-394: hand out the id and wait for a join that uses it, so a
		// client that keeps timing out cannot fill the group with ghosts.
		c.groups[g.id] = g
		g.pending[id] = c.afterFunc(j.session, func() { c.expirePending(g, id) })
		j.ch <- joinError(kerr.MemberIDRequired.Code, id)
	default:
		c.addMemberAndRebalance(g, id, j)
	}
}

func (c *Coordinator) joinKnown(g *group, j joining) {
	id := j.req.MemberID
	if t, ok := g.pending[id]; ok {
		t.Stop()
		delete(g.pending, id)
		c.addMemberAndRebalance(g, id, j)
		return
	}
	switch inst := j.req.InstanceID; {
	case inst != nil && g.static[*inst] == "":
		// Kafka's validateExistingMember: a static join must name a known
		// instance.
		j.ch <- joinError(kerr.UnknownMemberID.Code, id)
		return
	case g.fenced(inst, id):
		j.ch <- joinError(kerr.FencedInstanceID.Code, id)
		return
	}
	m := g.members[id]
	if m == nil {
		j.ch <- joinError(kerr.UnknownMemberID.Code, id)
		return
	}
	switch g.state {
	case statePreparingRebalance:
		c.updateMemberAndRebalance(g, m, j)
	case stateCompletingRebalance:
		if m.sameProtocols(j.req.Protocols) {
			// A retry of a join whose answer was lost: answer it again.
			c.scheduleHeartbeat(g, m)
			j.ch <- c.joinResponse(g, m)
			return
		}
		c.updateMemberAndRebalance(g, m, j)
	case stateStable:
		if m.id == g.leader || !m.sameProtocols(j.req.Protocols) {
			// The leader rejoining means it wants a new assignment.
			c.updateMemberAndRebalance(g, m, j)
			return
		}
		c.scheduleHeartbeat(g, m)
		j.ch <- c.joinResponse(g, m)
	default:
		j.ch <- joinError(kerr.UnknownMemberID.Code, id)
	}
}

// joinResponse is the answer for m in the current generation; only the
// leader gets the members and their metadata.
func (c *Coordinator) joinResponse(g *group, m *member) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Generation = g.generation
	resp.ProtocolType = ptr(g.protocolType)
	resp.Protocol = ptr(g.protocol)
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	if m.id == g.leader {
		for _, o := range g.sortedMembers() {
			resp.Members = append(resp.Members, kmsg.JoinGroupResponseMember{MemberID: o.id, InstanceID: o.instanceID, ProtocolMetadata: o.metadataFor(g.protocol)})
		}
	}
	return resp
}

func (c *Coordinator) addMemberAndRebalance(g *group, id string, j joining) {
	m := &member{
		id: id, instanceID: j.req.InstanceID, clientID: j.clientID, clientHost: j.clientHost,
		sessionTimeout: j.session, rebalanceTimeout: j.rebalance, protocols: j.req.Protocols,
		isNew: true, join: j.ch,
	}
	if len(g.members) == 0 {
		g.protocolType = j.req.ProtocolType
	}
	if g.state == statePreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	g.addMember(m)
	c.groups[g.id] = g
	c.scheduleHeartbeat(g, m)
	c.maybePrepareRebalance(g)
	c.maybeCompleteJoin(g)
}

func (c *Coordinator) updateMemberAndRebalance(g *group, m *member, j joining) {
	if m.join != nil {
		// The same member joined again from another connection; Kafka
		// drops the first request, kafkit tells it to retry.
		m.join <- joinError(kerr.RebalanceInProgress.Code, m.id)
	}
	m.protocols = j.req.Protocols
	m.sessionTimeout, m.rebalanceTimeout = j.session, j.rebalance
	m.join = j.ch
	c.scheduleHeartbeat(g, m)
	c.maybePrepareRebalance(g)
	c.maybeCompleteJoin(g)
}

// replaceStatic gives a restarted static member (KIP-345) a new member id in
// place of old. With unchanged protocols in a Stable group it gets its old
// assignment back without a rebalance.
func (c *Coordinator) replaceStatic(g *group, old *member, id string, j joining) {
	fence := func() {
		if old.join != nil {
			old.join <- joinError(kerr.FencedInstanceID.Code, old.id)
			old.join = nil
		}
		if old.sync != nil {
			old.sync <- syncError(kerr.FencedInstanceID.Code)
			old.sync = nil
		}
	}
	fence()
	if old.heartbeat != nil {
		old.heartbeat.Stop()
	}
	prevLeader := g.leader
	m := *old
	m.id, m.clientID, m.clientHost = id, j.clientID, j.clientHost
	m.protocols = j.req.Protocols
	m.sessionTimeout, m.rebalanceTimeout = j.session, j.rebalance
	m.heartbeat, m.heartbeatSeq = nil, 0
	delete(g.members, old.id)
	g.members[id] = &m
	g.static[*m.instanceID] = id
	if g.leader == old.id {
		g.leader = id
	}
	if g.awaitingSync[old.id] {
		delete(g.awaitingSync, old.id)
		g.awaitingSync[id] = true
	}
	c.scheduleHeartbeat(g, &m)
	m.join = j.ch
	switch g.state {
	case stateStable:
		if g.selectProtocol() != g.protocol {
			c.prepareRebalance(g)
			return
		}
		if err := c.storeGroup(g); err != nil {
			c.log.Warn("storing group after static member rejoined", "group", g.id, "err", err)
			// Put the old member back, as Kafka reverts on a failed write.
			m.heartbeat.Stop()
			delete(g.members, id)
			g.members[old.id] = old
			g.static[*m.instanceID] = old.id
			g.leader = prevLeader
			c.scheduleHeartbeat(g, old)
			j.ch <- joinError(kerr.CoordinatorNotAvailable.Code, "")
			return
		}
		m.join = nil
		resp := c.joinResponse(g, &m)
		if j.req.Version >= 9 {
			// KIP-814: the leader learns it leads but keeps the current
			// assignment.
			resp.SkipAssignment = m.id == g.leader
		} else {
			// The old leader id keeps a rejoining leader from running a
			// trivial assignment that a Stable group would never hand out.
			resp.LeaderID = prevLeader
			resp.Members = nil
		}
		j.ch <- resp
	case stateCompletingRebalance:
		c.prepareRebalance(g)
	case statePreparingRebalance:
		c.maybeCompleteJoin(g)
	}
}

func (c *Coordinator) maybePrepareRebalance(g *group) {
	switch g.state {
	case stateEmpty, stateStable, stateCompletingRebalance:
		c.prepareRebalance(g)
	}
}

// prepareRebalance starts a rebalance: members have until the longest
// rebalance timeout to rejoin. The rebalance of an empty group waits
// group.initial.rebalance.delay.ms for more members instead, extended while
// new ones arrive, as long as the rebalance timeout leaves time (Kafka's
// InitialDelayedJoin).
func (c *Coordinator) prepareRebalance(g *group) {
	if g.state == stateCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.sync != nil {
				c.answerSync(g, m, syncError(kerr.RebalanceInProgress.Code))
			}
		}
	}
	clear(g.awaitingSync)
	timeout := g.maxRebalanceTimeout()
	if g.state == stateEmpty && c.cfg.InitialRebalanceDelay > 0 {
		g.initialDelay, g.newMemberAdded = true, false
		// Kafka waits the full delay, whatever the rebalance timeout.
		g.remaining = max(timeout-c.cfg.InitialRebalanceDelay, 0)
		c.setRebalanceTimer(g, c.cfg.InitialRebalanceDelay, c.initialDelayExpired)
	} else {
		c.setRebalanceTimer(g, timeout, c.completeJoin)
	}
	g.transition(statePreparingRebalance, time.Now())
	c.log.Debug("preparing rebalance", "group", g.id, "generation", g.generation, "members", len(g.members))
}

// setRebalanceTimer replaces the group's rebalance deadline; a timer that
// fired before being replaced finds its sequence number stale.
func (c *Coordinator) setRebalanceTimer(g *group, d time.Duration, fn func(*group)) {
	c.stopRebalanceTimer(g)
	seq := g.rebalanceSeq
	g.rebalance = c.afterFunc(d, func() {
		if c.groups[g.id] == g && g.rebalanceSeq == seq {
			fn(g)
		}
	})
}

func (c *Coordinator) stopRebalanceTimer(g *group) {
	if g.rebalance != nil {
		g.rebalance.Stop()
		g.rebalance = nil
	}
	g.rebalanceSeq++
}

func (c *Coordinator) initialDelayExpired(g *group) {
	if g.newMemberAdded && g.remaining > 0 {
		g.newMemberAdded = false
		delay := min(c.cfg.InitialRebalanceDelay, g.remaining)
		g.remaining = max(g.remaining-c.cfg.InitialRebalanceDelay, 0)
		c.setRebalanceTimer(g, delay, c.initialDelayExpired)
		return
	}
	c.completeJoin(g)
}

// maybeCompleteJoin ends the join phase early once every member (and no
// pending KIP-394 member) has joined, except during the initial delay.
func (c *Coordinator) maybeCompleteJoin(g *group) {
	if g.state == statePreparingRebalance && !g.initialDelay && g.allJoined() {
		c.completeJoin(g)
	}
}

// completeJoin ends the join phase: dynamic members that did not rejoin
// are removed (static ones stay until their session expires, KIP-345), the
// next generation starts and every joined member is answered. If no member
// rejoined, the phase waits another rebalance timeout, as Kafka's does.
func (c *Coordinator) completeJoin(g *group) {
	c.stopRebalanceTimer(g)
	g.initialDelay = false
	for _, m := range g.members {
		if m.join == nil && m.instanceID == nil {
			c.removeMember(g, m)
		}
	}
	if len(g.members) > 0 && !g.electJoinedLeader() {
		c.log.Warn("no member rejoined; waiting for them or their session timeouts", "group", g.id)
		c.setRebalanceTimer(g, g.maxRebalanceTimeout(), c.completeJoin)
		return
	}
	now := time.Now()
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader, g.subscribed = "", "", nil
		g.transition(stateEmpty, now)
		if err := c.storeGroup(g); err != nil {
			c.log.Warn("storing empty group", "group", g.id, "err", err)
		}
		c.log.Info("group is empty", "group", g.id, "generation", g.generation)
		return
	}
	g.protocol = g.selectProtocol()
	g.subscribed = subscribedTopics(g)
	g.transition(stateCompletingRebalance, now)
	for _, m := range g.members {
		if m.join != nil {
			m.join <- c.joinResponse(g, m)
			m.join = nil
		}
		m.isNew = false
		g.awaitingSync[m.id] = true
		c.scheduleHeartbeat(g, m)
	}
	c.setRebalanceTimer(g, g.maxRebalanceTimeout(), c.syncExpired)
	c.log.Info("rebalance completed joins", "group", g.id, "generation", g.generation, "protocol", g.protocol, "members", len(g.members), "leader", g.leader)
}

// syncExpired removes the members that got their JoinGroup answer but did
// not send SyncGroup within the rebalance timeout, and rebalances.
func (c *Coordinator) syncExpired(g *group) {
	if len(g.awaitingSync) == 0 || (g.state != stateCompletingRebalance && g.state != stateStable) {
		return
	}
	for id := range g.awaitingSync {
		if m := g.members[id]; m != nil {
			c.removeMember(g, m)
		}
	}
	c.prepareRebalance(g)
	c.maybeCompleteJoin(g)
}

func (c *Coordinator) sync(req *kmsg.SyncGroupRequest) chan *kmsg.SyncGroupResponse {
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	fail := func(err *kerr.Error) chan *kmsg.SyncGroupResponse {
		ch <- syncError(err.Code)
		return ch
	}
	if err := c.unavailable(req.Group); err != nil {
		return fail(err)
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	g := c.groups[req.Group]
	switch {
	case g == nil:
		return fail(kerr.UnknownMemberID)
	case g.state == stateDead:
		return fail(kerr.CoordinatorNotAvailable)
	case g.fenced(req.InstanceID, req.MemberID):
		return fail(kerr.FencedInstanceID)
	case g.members[req.MemberID] == nil:
		return fail(kerr.UnknownMemberID)
	case req.Generation != g.generation:
		return fail(kerr.IllegalGeneration)
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		return fail(kerr.InconsistentGroupProtocol)
	}
	m := g.members[req.MemberID]
	switch g.state {
	case stateEmpty:
		return fail(kerr.UnknownMemberID)
	case statePreparingRebalance:
		return fail(kerr.RebalanceInProgress)
	case stateStable:
		c.synced(g, m)
		ch <- c.syncResponse(g, m)
		return ch
	}
	// CompletingRebalance: wait for the leader's assignments.
	if m.sync != nil {
		m.sync <- syncError(kerr.RebalanceInProgress.Code)
	}
	m.sync = ch
	c.synced(g, m)
	if m.id != g.leader {
		return ch
	}
	assignments := make(map[string][]byte, len(req.GroupAssignment))
	for _, a := range req.GroupAssignment {
		assignments[a.MemberID] = a.MemberAssignment
	}
	for _, o := range g.members {
		o.assignment = assignments[o.id]
		if o.assignment == nil {
			o.assignment = []byte{}
		}
	}
	if err := c.storeGroup(g); err != nil {
		c.log.Warn("storing group assignment", "group", g.id, "err", err)
		for _, o := range g.members {
			o.assignment = nil
			if o.sync != nil {
				c.answerSync(g, o, syncError(kerr.CoordinatorNotAvailable.Code))
			}
		}
		c.prepareRebalance(g)
		return ch
	}
	g.transition(stateStable, time.Now())
	for _, o := range g.members {
		if o.sync != nil {
			c.answerSync(g, o, c.syncResponse(g, o))
		}
	}
	c.log.Info("group is stable", "group", g.id, "generation", g.generation)
	return ch
}

// answerSync answers m's waiting SyncGroup and restarts its session, as
// Kafka's propagateAssignment does: however long the leader took to sync,
// the member has a whole session timeout from the answer for its next
// heartbeat (its timer kept firing and being renewed while it waited).
func (c *Coordinator) answerSync(g *group, m *member, resp *kmsg.SyncGroupResponse) {
	m.sync <- resp
	m.sync = nil
	c.scheduleHeartbeat(g, m)
}

// synced notes that m sent its SyncGroup for this generation.
func (c *Coordinator) synced(g *group, m *member) {
	delete(g.awaitingSync, m.id)
	if len(g.awaitingSync) == 0 && g.state == stateStable {
		c.stopRebalanceTimer(g)
	}
	c.scheduleHeartbeat(g, m)
}

func (c *Coordinator) syncResponse(g *group, m *member) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ProtocolType = ptr(g.protocolType)
	resp.Protocol = ptr(g.protocol)
	resp.MemberAssignment = m.assignment
	return resp
}

func (c *Coordinator) heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	code := func() *kerr.Error {
		if err := c.unavailable(req.Group); err != nil {
			return err
		}
		if req.Group == "" {
			return kerr.InvalidGroupID
		}
		g := c.groups[req.Group]
		switch {
		case g == nil:
			return kerr.UnknownMemberID
		case g.state == stateDead:
			return kerr.CoordinatorNotAvailable
		case g.state == stateEmpty:
			return kerr.UnknownMemberID
		case g.fenced(req.InstanceID, req.MemberID):
			return kerr.FencedInstanceID
		case g.members[req.MemberID] == nil:
			return kerr.UnknownMemberID
		case req.Generation != g.generation:
			return kerr.IllegalGeneration
		}
		c.scheduleHeartbeat(g, g.members[req.MemberID])
		if g.state == statePreparingRebalance {
			return kerr.RebalanceInProgress
		}
		return nil
	}()
	if code != nil {
		resp.ErrorCode = code.Code
	}
	return resp
}

func (c *Coordinator) leave(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if err := c.unavailable(req.Group); err != nil {
		resp.ErrorCode = err.Code
		return resp
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	g := c.groups[req.Group]
	if g != nil && g.state == stateDead {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	for _, lm := range leaving {
		rm := kmsg.LeaveGroupResponseMember{MemberID: lm.MemberID, InstanceID: lm.InstanceID}
		if err := c.leaveOne(g, lm); err != nil {
			rm.ErrorCode = err.Code
		}
		resp.Members = append(resp.Members, rm)
	}
	if req.Version < 3 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	return resp
}

func (c *Coordinator) leaveOne(g *group, lm kmsg.LeaveGroupRequestMember) *kerr.Error {
	if g == nil {
		return kerr.UnknownMemberID
	}
	id := lm.MemberID
	if lm.InstanceID != nil {
		sid, ok := g.static[*lm.InstanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID
		case id != "" && id != sid:
			return kerr.FencedInstanceID
		}
		id = sid
	}
	if t, ok := g.pending[id]; ok {
		t.Stop()
		delete(g.pending, id)
		c.maybeCompleteJoin(g)
		return nil
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID
	}
	c.log.Info("member left group", "group", g.id, "member", id)
	c.removeMemberAndUpdateGroup(g, m)
	return nil
}

// electJoinedLeader keeps a leader that rejoined, or hands the lead to a
// member that did (a static leader may stay away); false when none did.
func (g *group) electJoinedLeader() bool {
	if l := g.members[g.leader]; l != nil && l.join != nil {
		return true
	}
	for _, m := range g.sortedMembers() {
		if m.join != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

// removeMember takes m out of the group, failing its waiting calls, and
// elects a new leader (preferring a member already rejoined) if m led.
func (c *Coordinator) removeMember(g *group, m *member) {
	if m.heartbeat != nil {
		m.heartbeat.Stop()
	}
	m.heartbeatSeq++
	if m.join != nil {
		m.join <- joinError(kerr.UnknownMemberID.Code, m.id)
		m.join = nil
	}
	if m.sync != nil {
		m.sync <- syncError(kerr.UnknownMemberID.Code)
		m.sync = nil
	}
	delete(g.members, m.id)
	delete(g.awaitingSync, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		for _, o := range g.sortedMembers() {
			if g.leader == "" || o.join != nil && g.members[g.leader].join == nil {
				g.leader = o.id
			}
		}
	}
}

func (c *Coordinator) removeMemberAndUpdateGroup(g *group, m *member) {
	c.removeMember(g, m)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		c.prepareRebalance(g)
	}
	c.maybeCompleteJoin(g)
}

// scheduleHeartbeat restarts m's session timer. A member waiting for its
// first join is timed out after newMemberJoinTimeout instead, since it
// cannot heartbeat yet.
func (c *Coordinator) scheduleHeartbeat(g *group, m *member) {
	if m.heartbeat != nil {
		m.heartbeat.Stop()
	}
	m.heartbeatSeq++
	seq := m.heartbeatSeq
	d := m.sessionTimeout
	if m.isNew && m.join != nil {
		d = newMemberJoinTimeout
	}
	m.heartbeat = c.afterFunc(d, func() { c.heartbeatExpired(g, m, seq) })
}

func (c *Coordinator) heartbeatExpired(g *group, m *member, seq uint64) {
	if c.groups[g.id] != g || g.members[m.id] != m || m.heartbeatSeq != seq {
		return
	}
	// Members waiting in a rebalance are bounded by the rebalance and sync
	// deadlines, not by their session (Kafka's shouldKeepAlive).
	if m.join != nil && !m.isNew || m.sync != nil {
		c.scheduleHeartbeat(g, m)
		return
	}
	c.log.Info("member session expired", "group", g.id, "member", m.id, "session_timeout", m.sessionTimeout)
	c.removeMemberAndUpdateGroup(g, m)
}

func (c *Coordinator) expirePending(g *group, id string) {
	if c.groups[g.id] != g {
		return
	}
	if _, ok := g.pending[id]; !ok {
		return
	}
	delete(g.pending, id)
	c.maybeCompleteJoin(g)
}
