package coordinator

import (
	"cmp"
	"regexp"
	"slices"
	"time"
)

// consumerState is a KIP-848 consumer group's state, named as Kafka names
// it (ConsumerGroup.ConsumerGroupState).
type consumerState int8

const (
	consumerEmpty consumerState = iota
	consumerAssigning
	consumerReconciling
	consumerStable
)

var consumerStateNames = [...]string{"Empty", "Assigning", "Reconciling", "Stable"}

func (s consumerState) String() string { return consumerStateNames[s] }

// memberState is where a member is in reconciling its assignment with its
// target (Kafka's MemberState).
type memberState int8

const (
	// memberStable: the member owns its target assignment.
	memberStable memberState = iota
	// memberUnrevoked: the member must revoke partitions first; it stays
	// at its epoch until it reports them gone.
	memberUnrevoked
	// memberUnreleased: the member is at the target epoch but some target
	// partitions are still owned by others that have not revoked them.
	memberUnreleased
)

var memberStateNames = [...]string{"stable", "unrevoked_partitions", "unreleased_partitions"}

// Epochs with a meaning of their own in ConsumerGroupHeartbeat.
const (
	leaveEpoch       = -1 // the member leaves
	staticLeaveEpoch = -2 // a static member leaves for now and will rejoin
)

// tpSet is a set of topic partitions.
type tpSet map[topicPartition]struct{}

func (s tpSet) has(tp topicPartition) bool { _, ok := s[tp]; return ok }

func (s tpSet) clone() tpSet {
	out := make(tpSet, len(s))
	for tp := range s {
		out[tp] = struct{}{}
	}
	return out
}

func (s tpSet) equal(o tpSet) bool {
	if len(s) != len(o) {
		return false
	}
	for tp := range s {
		if !o.has(tp) {
			return false
		}
	}
	return true
}

// sorted lists the set by topic, then partition.
func (s tpSet) sorted() []topicPartition {
	out := make([]topicPartition, 0, len(s))
	for tp := range s {
		out = append(out, tp)
	}
	slices.SortFunc(out, compareTP)
	return out
}

func compareTP(a, b topicPartition) int {
	return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
}

// topicMeta is what an assignment depends on of a topic: its id (a topic
// deleted and created again is another topic) and partition count.
type topicMeta struct {
	id         [16]byte
	partitions int32
}

// consumerGroup is the KIP-848 state of a group of type "consumer"; owned
// by the Run goroutine.
type consumerGroup struct {
	// epoch is the group epoch: bumped by every change of membership,
	// subscriptions or the subscribed topics' metadata.
	epoch int32
	// assignmentEpoch is the group epoch the target assignment was
	// computed for; the target is recomputed while it lags epoch.
	assignmentEpoch int32
	members         map[string]*consumerMember
	static          map[string]string // group.instance.id → member id
	// target is each member's target assignment at assignmentEpoch.
	target map[string]tpSet
	// partitionEpochs holds, for every partition some member owns or is
	// revoking, that member's epoch (Kafka's currentPartitionEpoch): a
	// partition is given to its next owner only once it is gone from here.
	partitionEpochs map[topicPartition]int32
	// subscription is the metadata of the subscribed topics at the last
	// group epoch; a difference bumps the epoch.
	subscription map[string]topicMeta
	assignor     string // the assignor of the last target assignment
	stored       cgStored
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{
		members: make(map[string]*consumerMember), static: make(map[string]string),
		target: make(map[string]tpSet), partitionEpochs: make(map[topicPartition]int32),
		subscription: make(map[string]topicMeta),
	}
}

// consumerMember is one member of a consumer group; owned by the Run
// goroutine.
type consumerMember struct {
	id               string
	instanceID       *string
	rackID           *string
	clientID         string
	clientHost       string
	epoch, prevEpoch int32
	state            memberState
	rebalanceTimeout time.Duration
	topics           []string // subscribed topic names, sorted
	regex            *string  // subscribed topic regex (v1+)
	re               *regexp.Regexp
	assignor         string // the ServerAssignor the member asked for, "" for the group's
	assigned         tpSet  // what the member owns at its epoch
	revoking         tpSet  // what it must revoke before moving on
	// assignedAt is the epoch each assigned partition came to the member
	// with: a commit of an older epoch cannot be from its current owner
	// (KIP-1251).
	assignedAt map[topicPartition]int32
	// describable is the filter of regex matches from the member's last
	// heartbeat (nil: no authorizer, or a member loaded from the log that
	// has not heartbeated since; it does within its session timeout).
	describable func(topic string) bool

	session    *time.Timer
	sessionSeq uint64
	// revocationSeq invalidates the rebalance-timeout timer of an earlier
	// revocation.
	revocation    *time.Timer
	revocationSeq uint64
}

// state is the group's state as Kafka derives it.
func (cg *consumerGroup) state() consumerState {
	switch {
	case len(cg.members) == 0:
		return consumerEmpty
	case cg.epoch != cg.assignmentEpoch:
		return consumerAssigning
	}
	for _, m := range cg.members {
		if m.epoch != cg.assignmentEpoch || m.state != memberStable {
			return consumerReconciling
		}
	}
	return consumerStable
}

// sortedMembers lists the members by id, for stable listings.
func (cg *consumerGroup) sortedMembers() []*consumerMember {
	ms := make([]*consumerMember, 0, len(cg.members))
	for _, m := range cg.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *consumerMember) int { return cmp.Compare(a.id, b.id) })
	return ms
}

// currentEpoch is the epoch of the member owning tp, -1 when none does.
func (cg *consumerGroup) currentEpoch(tp topicPartition) int32 {
	if e, ok := cg.partitionEpochs[tp]; ok {
		return e
	}
	return -1
}

// release forgets m's claims on partitions (before they change or when m
// goes away).
func (cg *consumerGroup) release(m *consumerMember) {
	for tp := range m.assigned {
		delete(cg.partitionEpochs, tp)
	}
	for tp := range m.revoking {
		delete(cg.partitionEpochs, tp)
	}
}

// claim records m's partitions at its epoch.
func (cg *consumerGroup) claim(m *consumerMember) {
	for tp := range m.assigned {
		cg.partitionEpochs[tp] = m.epoch
	}
	for tp := range m.revoking {
		cg.partitionEpochs[tp] = m.epoch
	}
}

// reconcile moves m towards its target assignment as Kafka's
// CurrentAssignmentBuilder does: partitions leaving m are revoked first (m
// keeps its epoch until it reports them gone in owned), then m moves to the
// target epoch with the target partitions that no other member still owns.
// owned are the partitions m reports (nil: not reported).
func (cg *consumerGroup) reconcile(m *consumerMember, owned tpSet) {
	switch m.state {
	case memberStable:
		if m.epoch == cg.assignmentEpoch {
			return
		}
	case memberUnrevoked:
		if ownsAny(owned, m.revoking) {
			return
		}
	}
	cg.release(m)
	cg.nextAssignment(m, owned)
	cg.claim(m)
}

// ownsAny reports whether owned (nil: unknown, so assumed) holds any of ps.
func ownsAny(owned tpSet, ps tpSet) bool {
	if owned == nil {
		return len(ps) > 0
	}
	for tp := range ps {
		if owned.has(tp) {
			return true
		}
	}
	return false
}

// nextAssignment is CurrentAssignmentBuilder.computeNextAssignment; m's
// partitions are released by the caller.
func (cg *consumerGroup) nextAssignment(m *consumerMember, owned tpSet) {
	target := cg.target[m.id]
	kept, revoking, adding := tpSet{}, tpSet{}, tpSet{}
	unreleased := false
	for tp := range m.assigned {
		if target.has(tp) {
			kept[tp] = struct{}{}
		} else {
			revoking[tp] = struct{}{}
		}
	}
	for tp := range target {
		switch {
		case kept.has(tp):
		case cg.currentEpoch(tp) != -1:
			unreleased = true
		default:
			adding[tp] = struct{}{}
		}
	}
	at := make(map[topicPartition]int32, len(kept)+len(adding))
	for tp := range kept {
		at[tp] = m.assignedAt[tp]
	}
	m.assignedAt = at
	if len(revoking) > 0 && ownsAny(owned, revoking) {
		// The epoch stays: the member is told to revoke and moves on once
		// it no longer reports them.
		m.state, m.assigned, m.revoking = memberUnrevoked, kept, revoking
		return
	}
	for tp := range adding {
		kept[tp] = struct{}{}
		at[tp] = cg.assignmentEpoch
	}
	m.setEpoch(cg.assignmentEpoch)
	m.assigned, m.revoking = kept, tpSet{}
	m.state = memberStable
	if unreleased {
		m.state = memberUnreleased
	}
}

func (m *consumerMember) setEpoch(e int32) {
	if e != m.epoch {
		m.prevEpoch, m.epoch = m.epoch, e
	}
}

// subscribes reports whether m subscribes to topic, by name or regex.
func (m *consumerMember) subscribes(topic string) bool {
	if _, ok := slices.BinarySearch(m.topics, topic); ok {
		return true
	}
	return m.matches(topic)
}

// matches reports whether m's regex subscribes it to topic.
func (m *consumerMember) matches(topic string) bool {
	return m.re != nil && m.re.MatchString(topic) && (m.describable == nil || m.describable(topic))
}

// compileTopicRegex compiles a SubscribedTopicRegex. Kafka matches it with
// RE2/J against the whole topic name; Go's regexp is RE2 too, so the syntax
// and the linear-time semantics agree (neither has lookaround nor
// backreferences). Go additionally accepts a few Perl and Unicode class
// spellings RE2/J rejects, so a pattern Kafka answers with
// INVALID_REGULAR_EXPRESSION may be accepted here.
func compileTopicRegex(s string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + s + `)$`)
}
