package coordinator

import (
	"cmp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// state is a classic group's state, named as Kafka names it.
type state int8

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s state) String() string { return stateNames[s] }

type topicPartition struct {
	topic     string
	partition int32
}

// committed is a committed offset.
type committed struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTime  time.Time
	// expireTime is the explicit expiry of a commit of OffsetCommit v1-4
	// (retention time, KIP-211's "old expiration semantics"); zero when
	// offsets.retention.minutes applies.
	expireTime time.Time
	// logOffset is the base offset of the commit's batch in
	// __consumer_offsets: a transaction's offsets replace a commit only if
	// they were appended after it.
	logOffset int64
}

// group is one consumer group; owned by the Run goroutine.
type group struct {
	id           string
	state        state
	stateSince   time.Time // when the group entered state (Kafka's currentStateTimestamp)
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string // group.instance.id → member id
	joinSeq      uint64            // orders members by first join, for leader choice and listings

	// pending are KIP-394 member ids handed out with MEMBER_ID_REQUIRED and
	// not yet used to join; each expires after the session timeout.
	pending map[string]*time.Timer

	// rebalance is the running join deadline (PreparingRebalance) or sync
	// deadline (CompletingRebalance); rebalanceSeq invalidates a timer that
	// already fired into the loop's queue when it was replaced.
	rebalance    *time.Timer
	rebalanceSeq uint64
	// initialDelay is set while the first rebalance of an empty group is
	// held back by group.initial.rebalance.delay.ms; newMemberAdded extends
	// it, remaining caps the extensions by the rebalance timeout.
	initialDelay   bool
	newMemberAdded bool
	remaining      time.Duration
	// awaitingSync are members that got their JoinGroup answer of this
	// generation but have not sent SyncGroup yet.
	awaitingSync map[string]bool

	// subscribed are the topics the members' consumer-protocol metadata
	// names; nil when unknown (other protocol types or undecodable).
	subscribed map[string]bool

	// consumer is set for a group of type "consumer" (KIP-848); its
	// classic fields then stay unused but for state, which is Empty or
	// Stable (has members), and subscribed, so offsets expire and are
	// deleted as for a classic consumer group.
	consumer *consumerGroup

	offsets map[topicPartition]committed
	// txnOffsets are the offsets of open transactions, by producer id,
	// written by TxnOffsetCommit and waiting for the transaction's marker.
	txnOffsets map[int64]map[topicPartition]committed
}

// member is one group member; owned by the Run goroutine.
type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []kmsg.JoinGroupRequestProtocol
	assignment       []byte
	joinOrder        uint64
	isNew            bool // joined during the current rebalance, not yet through a completed join

	// join and sync are set while the member waits for its JoinGroup or
	// SyncGroup answer; each is buffered so the loop never blocks on it.
	join chan *kmsg.JoinGroupResponse
	sync chan *kmsg.SyncGroupResponse

	heartbeat    *time.Timer
	heartbeatSeq uint64
}

func newGroup(id string, now time.Time) *group {
	return &group{
		id: id, stateSince: now,
		members: make(map[string]*member), static: make(map[string]string),
		pending: make(map[string]*time.Timer), awaitingSync: make(map[string]bool),
		offsets: make(map[topicPartition]committed), txnOffsets: make(map[int64]map[topicPartition]committed),
	}
}

func (g *group) transition(s state, now time.Time) {
	g.state = s
	g.stateSince = now
}

// resetMembership forgets the membership a replayed group-metadata record
// described, before the next one replaces it.
func (g *group) resetMembership() {
	g.state = stateEmpty
	g.protocolType, g.protocol, g.leader, g.generation = "", "", "", 0
	g.consumer = nil
	clear(g.members)
	clear(g.static)
	g.subscribed = nil
}

func (g *group) addMember(m *member) {
	g.joinSeq++
	m.joinOrder = g.joinSeq
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
}

// sortedMembers lists members in join order.
func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.joinOrder, b.joinOrder) })
	return ms
}

// metadataFor is the member's metadata for the named protocol.
func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func (m *member) supports(protocol string) bool {
	return slices.ContainsFunc(m.protocols, func(p kmsg.JoinGroupRequestProtocol) bool { return p.Name == protocol })
}

// sameProtocols reports whether a rejoin carries exactly the protocols the
// member has (Kafka's matchesMetadata), so no rebalance is needed.
func (m *member) sameProtocols(ps []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(m.protocols, ps, func(a, b kmsg.JoinGroupRequestProtocol) bool {
		return a.Name == b.Name && string(a.Metadata) == string(b.Metadata)
	})
}

// supportsProtocols is Kafka's check that a joining member can be part of
// the group: same protocol type and at least one protocol every current
// member supports.
func (g *group) supportsProtocols(protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		all := true
		for _, m := range g.members {
			if !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol of the next generation as Kafka does:
// among the protocols every member supports, each member votes for the first
// in its own preference order and the most votes win; ties go to the
// leader's order.
func (g *group) selectProtocol() string {
	leader := g.members[g.leader]
	var candidates []string
	for _, p := range leader.protocols {
		all := true
		for _, m := range g.members {
			if !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	votes := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// subscribedTopics decodes the consumer-protocol metadata of every member
// for the group's protocol; nil when any of it is not consumer metadata.
func subscribedTopics(g *group) map[string]bool {
	if g.protocolType != "consumer" {
		return nil
	}
	topics := make(map[string]bool)
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return nil
		}
		for _, t := range md.Topics {
			topics[t] = true
		}
	}
	return topics
}

// isSubscribed reports whether a member may consume topic; unknown
// subscriptions count as subscribed, as in Kafka.
func (g *group) isSubscribed(topic string) bool {
	return g.subscribed == nil || g.subscribed[topic]
}

// maxRebalanceTimeout is the longest rebalance timeout any member asked for.
func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return true
}

func (g *group) awaitingJoin() int {
	n := 0
	for _, m := range g.members {
		if m.join != nil {
			n++
		}
	}
	return n
}
