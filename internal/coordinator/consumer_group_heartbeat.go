package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupHeartbeat handles a ConsumerGroupHeartbeat request (KIP-848)
// from client clientID at clientHost: joining (epoch 0), heartbeating with
// the member's epoch and owned partitions, leaving (-1) or a static
// member's temporary leave (-2). It never blocks on other members: the
// answer carries the member's next assignment as far as the partitions'
// previous owners have released them. describable, nil without an
// authorizer, says which topics the member's principal may describe: a
// regex subscription matches only those (Kafka filters regex matches by
// DESCRIBE, so ACLs cannot be side-stepped by subscribing to `.*`).
func (c *Coordinator) ConsumerGroupHeartbeat(ctx context.Context, clientID, clientHost string, describable func(topic string) bool, req *kmsg.ConsumerGroupHeartbeatRequest) (*kmsg.ConsumerGroupHeartbeatResponse, error) {
	return call(ctx, c, func() *kmsg.ConsumerGroupHeartbeatResponse {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		if e := c.consumerHeartbeat(clientID, clientHost, describable, req, resp); e != nil {
			// Kafka's error answers carry the error only.
			*resp = *req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			resp.ErrorCode = e.err.Code
			if e.msg != "" {
				resp.ErrorMessage = &e.msg
			}
		}
		return resp
	})
}

// groupError is an error answer with Kafka's message.
type groupError struct {
	err *kerr.Error
	msg string
}

func errorf(err *kerr.Error, format string, args ...any) *groupError {
	return &groupError{err, fmt.Sprintf(format, args...)}
}

// validateConsumerHeartbeat is Kafka's
// throwIfConsumerGroupHeartbeatRequestIsInvalid.
func (c *Coordinator) validateConsumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) *groupError {
	invalid := func(msg string) *groupError { return &groupError{kerr.InvalidRequest, msg} }
	switch {
	case req.Group == "":
		return invalid("GroupId can't be empty.")
	case req.InstanceID != nil && *req.InstanceID == "":
		return invalid("InstanceId can't be empty.")
	case req.RackID != nil && *req.RackID == "":
		return invalid("RackId can't be empty.")
	}
	switch e := req.MemberEpoch; {
	case e > 0 || e == leaveEpoch:
		if req.MemberID == "" {
			return invalid("MemberId can't be empty.")
		}
	case e == 0:
		switch {
		case req.Version >= 1 && req.MemberID == "":
			return invalid("MemberId can't be empty.")
		case req.RebalanceTimeoutMillis == -1:
			return invalid("RebalanceTimeoutMs must be provided in first request.")
		case req.Topics == nil || len(req.Topics) > 0:
			return invalid("TopicPartitions must be empty when (re-)joining.")
		case len(req.SubscribedTopicNames) == 0 && req.SubscribedTopicRegex == nil:
			return invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
		}
	case e == staticLeaveEpoch:
		if req.MemberID == "" {
			return invalid("MemberId can't be empty.")
		}
		if req.InstanceID == nil {
			return invalid("InstanceId can't be null.")
		}
	default:
		return invalid("MemberEpoch is invalid.")
	}
	if a := req.ServerAssignor; a != nil && !slices.ContainsFunc(c.cfg.ConsumerAssignors, func(n string) bool { return shortAssignorName(n) == *a }) {
		return errorf(kerr.UnsupportedAssignor, "ServerAssignor %s is not supported. Supported assignors: %s.", *a, c.assignorNames())
	}
	if re := req.SubscribedTopicRegex; re != nil && *re != "" {
		if _, err := compileTopicRegex(*re); err != nil {
			return errorf(kerr.InvalidRegularExpression, "SubscribedTopicRegex `%s` is not a valid regular expression: %v.", *re, err)
		}
	}
	return nil
}

func (c *Coordinator) assignorNames() string {
	var s string
	for i, n := range c.cfg.ConsumerAssignors {
		if i > 0 {
			s += ", "
		}
		s += shortAssignorName(n)
	}
	return s
}

func (c *Coordinator) consumerHeartbeat(clientID, clientHost string, describable func(string) bool, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *groupError {
	if err := c.unavailable(req.Group); err != nil {
		return &groupError{err: err}
	}
	if e := c.validateConsumerHeartbeat(req); e != nil {
		return e
	}
	if req.MemberEpoch == leaveEpoch || req.MemberEpoch == staticLeaveEpoch {
		return c.consumerLeave(req, resp)
	}
	join := req.MemberEpoch == 0
	g := c.groups[req.Group]
	switch {
	case g == nil && !join:
		return errorf(kerr.GroupIDNotFound, "Consumer group %s not found.", req.Group)
	case g == nil:
		g = newGroup(req.Group, time.Now())
	case g.consumer == nil && (!join || len(g.members) > 0 || len(g.pending) > 0):
		return errorf(kerr.GroupIDNotFound, "Group %s is not a consumer group", req.Group)
	}
	cg := g.consumer
	if cg == nil {
		cg = newConsumerGroup() // installed below, once the request is accepted
	}
	if req.MemberID == "" {
		req.MemberID = newUUID() // v0: the coordinator names the member
	}
	if len(cg.members) >= c.cfg.ConsumerMaxSize && cg.members[req.MemberID] == nil {
		return errorf(kerr.GroupMaxSizeReached, "The consumer group has reached its maximum capacity of %d members.", c.cfg.ConsumerMaxSize)
	}
	owned := c.ownedPartitions(req.Topics)
	m, replaced, e := c.lookupConsumerMember(cg, req, owned)
	if e != nil {
		return e
	}

	// Accepted: from here on the request changes the group.
	if g.consumer == nil {
		c.becomeConsumerGroup(g, cg)
	}
	if replaced != nil {
		c.replaceStaticMember(g, replaced, m)
	}
	before := m.assigned
	bump := c.updateMember(cg, m, req, clientID, clientHost, describable, cg.members[m.id] != m && replaced == nil)
	if sub := c.subscriptionMetadata(cg); !maps.Equal(sub, cg.subscription) {
		cg.subscription, bump = sub, true
		g.subscribed = make(map[string]bool, len(sub))
		for t := range sub {
			g.subscribed[t] = true
		}
	}
	if bump {
		cg.epoch++
		c.log.Info("bumped consumer group epoch", "group", g.id, "epoch", cg.epoch, "member", m.id)
	}
	if cg.epoch > cg.assignmentEpoch {
		c.computeTarget(g)
	}
	cg.reconcile(m, owned)
	c.watchRevocation(g, m)
	c.scheduleConsumerSession(g, m)
	if g.state != stateStable {
		g.transition(stateStable, time.Now())
	}
	c.storeConsumerGroup(g, m)

	resp.MemberID = &m.id
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(c.cfg.ConsumerHeartbeatInterval.Milliseconds())
	full := join || req.RebalanceTimeoutMillis != -1 && (req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil
	if full || !before.equal(m.assigned) {
		resp.Assignment = c.responseAssignment(cg, m.assigned)
	}
	return nil
}

// becomeConsumerGroup makes g (new, or a classic group without members,
// whose offsets it keeps, as Kafka converts an empty classic group) a
// consumer group.
func (c *Coordinator) becomeConsumerGroup(g *group, cg *consumerGroup) {
	if _, ok := c.groups[g.id]; ok {
		c.appendTombstones(g)
	}
	g.consumer = cg
	g.protocolType, g.protocol, g.leader = "consumer", "", ""
	c.groups[g.id] = g
}

// lookupConsumerMember finds the member a (non-leave) heartbeat is from,
// or builds the member that joins, without changing the group. For a
// static member taking over a released instance id it returns the member
// it replaces.
func (c *Coordinator) lookupConsumerMember(cg *consumerGroup, req *kmsg.ConsumerGroupHeartbeatRequest, owned tpSet) (m, replaced *consumerMember, e *groupError) {
	id, join := req.MemberID, req.MemberEpoch == 0
	if req.InstanceID != nil {
		inst := *req.InstanceID
		old := cg.members[cg.static[inst]]
		switch {
		case join && old != nil && old.id != id:
			if old.epoch != staticLeaveEpoch {
				return nil, nil, errorf(kerr.UnreleasedInstanceID, "Static member %s with instance id %s cannot join the group because the instance id is owned by %s member.", id, inst, old.id)
			}
			// The restarted instance takes over its assignment: no
			// rebalance for a static member that comes back in time.
			m := *old
			m.id, m.epoch, m.prevEpoch = id, 0, 0
			m.session, m.revocation = nil, nil
			return &m, old, nil
		case !join && old == nil:
			return nil, nil, errorf(kerr.UnknownMemberID, "Instance id %s is unknown.", inst)
		case !join && old.id != id:
			return nil, nil, errorf(kerr.FencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", id, inst, old.id)
		}
	}
	m = cg.members[id]
	switch {
	case join && m == nil:
		return &consumerMember{id: id, assigned: tpSet{}, revoking: tpSet{}}, nil, nil
	case join:
		// The member lost its state (a lost response, a fenced epoch) and
		// joins again with the same id and nothing owned: it starts over
		// in place, its partitions free to come back to it.
		cg.release(m)
		m.assigned, m.revoking, m.assignedAt = tpSet{}, tpSet{}, nil
		m.epoch, m.prevEpoch, m.state = 0, 0, memberStable
		return m, nil, nil
	case m == nil:
		return nil, nil, errorf(kerr.UnknownMemberID, "Member %s is not a member of group %s.", id, req.Group)
	}
	return m, nil, checkMemberEpoch(m, req.MemberEpoch, owned)
}

// checkMemberEpoch is Kafka's throwIfConsumerGroupMemberEpochIsInvalid: a
// member one epoch behind is accepted while what it owns is part of its
// assignment, since the answer that moved it on may have been lost.
func checkMemberEpoch(m *consumerMember, epoch int32, owned tpSet) *groupError {
	switch {
	case epoch > m.epoch:
		return errorf(kerr.FencedMemberEpoch, "The consumer group member has a greater member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", epoch, m.epoch)
	case epoch < m.epoch && (epoch != m.prevEpoch || owned == nil || !subset(owned, m.assigned)):
		return errorf(kerr.FencedMemberEpoch, "The consumer group member has a smaller member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", epoch, m.epoch)
	}
	return nil
}

func subset(a, b tpSet) bool {
	for tp := range a {
		if !b.has(tp) {
			return false
		}
	}
	return true
}

// replaceStaticMember installs m in place of the static member old.
func (c *Coordinator) replaceStaticMember(g *group, old, m *consumerMember) {
	cg := g.consumer
	c.stopConsumerTimers(old)
	delete(cg.members, old.id)
	cg.target[m.id] = cg.target[old.id]
	delete(cg.target, old.id)
	c.log.Info("static member rejoined", "group", g.id, "instance", *m.instanceID, "member", m.id, "replaced", old.id)
}

// updateMember applies what the heartbeat carries (null fields are
// unchanged) and adds a new member; it reports whether the group epoch
// must move: a new member (not a static one taking over its instance's
// place) or a changed subscription.
func (c *Coordinator) updateMember(cg *consumerGroup, m *consumerMember, req *kmsg.ConsumerGroupHeartbeatRequest, clientID, clientHost string, describable func(string) bool, changed bool) bool {
	cg.members[m.id] = m
	if req.InstanceID != nil {
		m.instanceID = req.InstanceID
		cg.static[*req.InstanceID] = m.id
	}
	if req.RackID != nil {
		m.rackID = req.RackID
	}
	if req.RebalanceTimeoutMillis != -1 {
		m.rebalanceTimeout = ms(req.RebalanceTimeoutMillis)
	}
	if req.ServerAssignor != nil {
		m.assignor = *req.ServerAssignor
	}
	if req.SubscribedTopicNames != nil {
		topics := slices.Compact(slices.Sorted(slices.Values(req.SubscribedTopicNames)))
		changed = changed || !slices.Equal(topics, m.topics)
		m.topics = topics
	}
	if r := req.SubscribedTopicRegex; r != nil {
		var prev string
		if m.regex != nil {
			prev = *m.regex
		}
		changed = changed || *r != prev
		m.regex, m.re = nil, nil
		if *r != "" { // an empty regex unsubscribes
			m.regex = r
			m.re, _ = compileTopicRegex(*r) // validated
		}
	}
	m.clientID, m.clientHost, m.describable = clientID, clientHost, describable
	return changed
}

// subscriptionMetadata is the metadata of every existing topic some member
// subscribes to, by name or regex.
func (c *Coordinator) subscriptionMetadata(cg *consumerGroup) map[string]topicMeta {
	out := make(map[string]topicMeta)
	add := func(t string) {
		if _, ok := out[t]; ok {
			return
		}
		if id, n, ok := c.cfg.Topics.Topic(t); ok {
			out[t] = topicMeta{id, n}
		}
	}
	var all []string
	for _, m := range cg.members {
		for _, t := range m.topics {
			add(t)
		}
		if m.re != nil {
			if all == nil {
				all = c.cfg.Topics.TopicNames()
			}
			for _, t := range all {
				if m.matches(t) {
					add(t)
				}
			}
		}
	}
	return out
}

// computeTarget computes the target assignment of the group epoch with the
// group's assignor: the one most members ask for, else the first of
// group.consumer.assignors.
func (c *Coordinator) computeTarget(g *group) {
	cg := g.consumer
	spec := assignSpec{topics: make(map[string][]string), meta: cg.subscription, prev: cg.target}
	votes := make(map[string]int)
	topics := slices.Sorted(maps.Keys(cg.subscription))
	for _, m := range cg.sortedMembers() {
		spec.members = append(spec.members, m.id)
		for _, t := range topics {
			if m.subscribes(t) {
				spec.topics[m.id] = append(spec.topics[m.id], t)
			}
		}
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	name := shortAssignorName(c.cfg.ConsumerAssignors[0])
	for _, a := range c.cfg.ConsumerAssignors {
		if a := shortAssignorName(a); votes[a] > votes[name] {
			name = a
		}
	}
	cg.target = assignorByName(name)(spec)
	cg.assignor, cg.assignmentEpoch = name, cg.epoch
	c.log.Debug("computed target assignment", "group", g.id, "epoch", cg.epoch, "assignor", name, "members", len(spec.members))
}

// ownedPartitions converts the partitions a heartbeat reports; nil when
// it reports none (unchanged). Partitions of unknown topic ids are dropped:
// those topics are gone.
func (c *Coordinator) ownedPartitions(topics []kmsg.ConsumerGroupHeartbeatRequestTopic) tpSet {
	if topics == nil {
		return nil
	}
	out := tpSet{}
	for _, t := range topics {
		name, ok := c.cfg.Topics.TopicName(t.TopicID)
		if !ok {
			continue
		}
		for _, p := range t.Partitions {
			out[topicPartition{name, p}] = struct{}{}
		}
	}
	return out
}

// responseAssignment is an assignment by topic id, as the member gets it.
func (c *Coordinator) responseAssignment(cg *consumerGroup, s tpSet) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	a := &kmsg.ConsumerGroupHeartbeatResponseAssignment{}
	a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, tp := range s.sorted() {
		if n := len(a.Topics); n > 0 && a.Topics[n-1].TopicID == c.topicID(cg, tp.topic) {
			a.Topics[n-1].Partitions = append(a.Topics[n-1].Partitions, tp.partition)
			continue
		}
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID, t.Partitions = c.topicID(cg, tp.topic), []int32{tp.partition}
		a.Topics = append(a.Topics, t)
	}
	return a
}

func (c *Coordinator) topicID(cg *consumerGroup, topic string) [16]byte {
	if m, ok := cg.subscription[topic]; ok {
		return m.id
	}
	id, _, _ := c.cfg.Topics.Topic(topic)
	return id
}

// consumerLeave handles epochs -1 (the member leaves: its partitions go to
// others at once) and -2 (a static member leaves for now: it keeps its
// assignment until it rejoins or its session times out).
func (c *Coordinator) consumerLeave(req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *groupError {
	g := c.groups[req.Group]
	if g == nil || g.consumer == nil {
		return errorf(kerr.GroupIDNotFound, "Consumer group %s not found.", req.Group)
	}
	cg := g.consumer
	var m *consumerMember
	if inst := req.InstanceID; inst != nil {
		if m = cg.members[cg.static[*inst]]; m == nil {
			return errorf(kerr.UnknownMemberID, "Instance id %s is unknown.", *inst)
		}
		if m.id != req.MemberID {
			return errorf(kerr.FencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", req.MemberID, *inst, m.id)
		}
	} else if m = cg.members[req.MemberID]; m == nil {
		return errorf(kerr.UnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, req.Group)
	}
	resp.MemberID, resp.MemberEpoch = &m.id, req.MemberEpoch
	if req.MemberEpoch == staticLeaveEpoch {
		cg.release(m)
		m.setEpoch(staticLeaveEpoch)
		cg.claim(m) // its partitions wait for it
		c.stopRevocation(m)
		c.scheduleConsumerSession(g, m)
		c.storeConsumerGroup(g, m)
		c.log.Info("static member left temporarily", "group", g.id, "member", m.id, "instance", *m.instanceID)
		return nil
	}
	c.log.Info("member left group", "group", g.id, "member", m.id)
	c.removeConsumerMember(g, m)
	return nil
}

// removeConsumerMember takes m out of the group (it left, was fenced or its
// session expired) and bumps the group epoch; its partitions are free for
// the next target assignment.
func (c *Coordinator) removeConsumerMember(g *group, m *consumerMember) {
	cg := g.consumer
	c.stopConsumerTimers(m)
	cg.release(m)
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
	cg.epoch++
	if len(cg.members) == 0 {
		g.transition(stateEmpty, time.Now())
		g.subscribed = nil
		cg.subscription = make(map[string]topicMeta)
	}
	c.storeConsumerGroup(g)
}

// scheduleConsumerSession restarts m's session timer
// (group.consumer.session.timeout.ms).
func (c *Coordinator) scheduleConsumerSession(g *group, m *consumerMember) {
	if m.session != nil {
		m.session.Stop()
	}
	m.sessionSeq++
	seq := m.sessionSeq
	m.session = c.afterFunc(c.cfg.ConsumerSessionTimeout, func() {
		if c.groups[g.id] == g && g.consumer != nil && g.consumer.members[m.id] == m && m.sessionSeq == seq {
			c.log.Info("member session expired", "group", g.id, "member", m.id, "session_timeout", c.cfg.ConsumerSessionTimeout)
			c.removeConsumerMember(g, m)
		}
	})
}

// watchRevocation bounds a revocation by the member's rebalance timeout, as
// Kafka does: a member that has not revoked by then is removed from the
// group so its partitions move on.
func (c *Coordinator) watchRevocation(g *group, m *consumerMember) {
	if m.state != memberUnrevoked {
		c.stopRevocation(m)
		return
	}
	if m.revocation != nil {
		return
	}
	seq, epoch := m.revocationSeq, m.epoch
	m.revocation = c.afterFunc(m.rebalanceTimeout, func() {
		if c.groups[g.id] == g && g.consumer != nil && g.consumer.members[m.id] == m && m.revocationSeq == seq && m.state == memberUnrevoked && m.epoch == epoch {
			c.log.Info("member did not revoke its partitions within the rebalance timeout", "group", g.id, "member", m.id, "rebalance_timeout", m.rebalanceTimeout)
			c.removeConsumerMember(g, m)
		}
	})
}

func (c *Coordinator) stopRevocation(m *consumerMember) {
	if m.revocation != nil {
		m.revocation.Stop()
		m.revocation = nil
	}
	m.revocationSeq++
}

func (c *Coordinator) stopConsumerTimers(m *consumerMember) {
	if m.session != nil {
		m.session.Stop()
	}
	m.sessionSeq++
	c.stopRevocation(m)
}

// newUUID is a random member id as Kafka's Uuid.toString prints one.
func newUUID() string {
	var u [16]byte
	rand.Read(u[:])
	return base64.RawURLEncoding.EncodeToString(u[:])
}
