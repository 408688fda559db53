package share

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TopicInfo is what the assignor needs of a subscribed topic.
type TopicInfo struct {
	ID         [16]byte
	Partitions int32
}

// Member is a share group member as ShareGroupDescribe shows it.
type Member struct {
	ID, ClientID, ClientHost string
	Rack                     *string
	Epoch                    int32
	Topics                   []string
	// Assignment maps topic id to its assigned partitions.
	Assignment map[[16]byte][]int32
	deadline   time.Time
}

// Group is one share group's membership: KIP-932's group epoch and the
// simple assignor's target assignment, which needs no revocation (several
// members may share a partition), so a member takes the group epoch and
// its new assignment at its next heartbeat.
type Group struct {
	ID              string
	Epoch           int32 // bumped by every membership, subscription or metadata change
	AssignmentEpoch int32
	members         map[string]*Member
	// topics is the metadata the last assignment was computed from.
	topics map[string]TopicInfo
}

// State is Kafka's share group state: Empty or Stable (Dead once deleted).
func (g *Group) State() string {
	if len(g.members) == 0 {
		return "Empty"
	}
	return "Stable"
}

// Members returns the members sorted by id.
func (g *Group) Members() []*Member {
	out := make([]*Member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// HeartbeatRequest is one ShareGroupHeartbeat.
type HeartbeatRequest struct {
	Group, Member        string
	Epoch                int32
	Rack                 *string
	Topics               []string // nil: unchanged since the last heartbeat
	ClientID, ClientHost string
}

// HeartbeatResult is the coordinator's answer; Assignment is nil when the
// member's assignment did not change.
type HeartbeatResult struct {
	Err        *kerr.Error
	Message    string
	Epoch      int32
	Assignment map[[16]byte][]int32
	// Left is set when the member left, so its locks and sessions go.
	Left bool
}

// heartbeat runs ShareGroupHeartbeat on g with Kafka's validation: a first
// heartbeat (epoch 0) must name its topics, a later one must carry the
// member's current epoch (FENCED_MEMBER_EPOCH) of a known member
// (UNKNOWN_MEMBER_ID), and epoch -1 leaves.
func (g *Group) heartbeat(req HeartbeatRequest, meta func(string) (TopicInfo, bool), now time.Time, sessionTimeout time.Duration, maxSize int) HeartbeatResult {
	m := g.members[req.Member]
	changed := false
	switch {
	case req.Epoch == -1:
		if m == nil {
			return HeartbeatResult{Err: kerr.UnknownMemberID, Message: "Member " + req.Member + " is not a member of group " + g.ID + "."}
		}
		delete(g.members, req.Member)
		g.bump()
		return HeartbeatResult{Epoch: -1, Left: true}
	case req.Epoch == 0:
		if len(req.Topics) == 0 {
			return HeartbeatResult{Err: kerr.InvalidRequest, Message: "SubscribedTopicNames must be set in first request."}
		}
		if m == nil {
			if len(g.members) >= maxSize {
				return HeartbeatResult{Err: kerr.GroupMaxSizeReached, Message: "The share group has reached its maximum capacity of " + strconv.Itoa(maxSize) + " members."}
			}
			m = &Member{ID: req.Member}
			g.members[req.Member] = m
		}
		// A member rejoining with epoch 0 starts over, as in Kafka.
		m.Epoch, m.Assignment = 0, nil
		m.Topics = nil
		changed = true
	case m == nil:
		return HeartbeatResult{Err: kerr.UnknownMemberID, Message: "Member " + req.Member + " is not a member of group " + g.ID + "."}
	case req.Epoch != m.Epoch:
		return HeartbeatResult{Err: kerr.FencedMemberEpoch, Message: "The share group member has a smaller or larger member epoch (" + strconv.Itoa(int(req.Epoch)) + ") than the one known by the group coordinator (" + strconv.Itoa(int(m.Epoch)) + ")."}
	}
	m.ClientID, m.ClientHost = req.ClientID, req.ClientHost
	if req.Rack != nil {
		m.Rack = req.Rack
	}
	if req.Topics != nil && !slices.Equal(sortedCopy(req.Topics), m.Topics) {
		m.Topics = sortedCopy(req.Topics)
		changed = true
	}
	m.deadline = now.Add(sessionTimeout)
	// One bump per heartbeat, whatever changed, as Kafka's group epoch.
	if changed || g.metadataChanged(meta) {
		g.bump()
	}
	if g.AssignmentEpoch != g.Epoch {
		g.assign(meta)
	}
	res := HeartbeatResult{Epoch: m.Epoch}
	if m.Epoch != g.AssignmentEpoch || req.Epoch == 0 {
		m.Epoch = g.AssignmentEpoch
		res.Epoch, res.Assignment = m.Epoch, m.Assignment
		if res.Assignment == nil {
			res.Assignment = map[[16]byte][]int32{}
		}
	}
	return res
}

func (g *Group) bump() { g.Epoch++ }

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}

// metadataChanged reports whether a subscribed topic appeared, went or
// changed its partitions since the last assignment.
func (g *Group) metadataChanged(meta func(string) (TopicInfo, bool)) bool {
	seen := 0
	for name := range g.subscribed() {
		seen++
		ti, ok := meta(name)
		old, had := g.topics[name]
		if ok != had || ti != old {
			return true
		}
	}
	return seen != len(g.topics)
}

func (g *Group) subscribed() map[string]struct{} {
	out := map[string]struct{}{}
	for _, m := range g.members {
		for _, t := range m.Topics {
			out[t] = struct{}{}
		}
	}
	return out
}

// assign computes the simple assignor's target assignment: per topic, with
// no more members than partitions the partitions are dealt out round robin
// over the subscribed members; with more members, each member gets one
// partition round robin, so partitions are shared and every member works.
func (g *Group) assign(meta func(string) (TopicInfo, bool)) {
	g.topics = map[string]TopicInfo{}
	for _, m := range g.members {
		m.Assignment = map[[16]byte][]int32{}
	}
	for name := range g.subscribed() {
		ti, ok := meta(name)
		if !ok {
			continue
		}
		g.topics[name] = ti
		var ms []*Member
		for _, m := range g.Members() {
			if slices.Contains(m.Topics, name) {
				ms = append(ms, m)
			}
		}
		n := int(ti.Partitions)
		if n == 0 {
			continue
		}
		if len(ms) <= n {
			for p := 0; p < n; p++ {
				m := ms[p%len(ms)]
				m.Assignment[ti.ID] = append(m.Assignment[ti.ID], int32(p))
			}
			continue
		}
		for i, m := range ms {
			m.Assignment[ti.ID] = append(m.Assignment[ti.ID], int32(i%n))
		}
	}
	g.AssignmentEpoch = g.Epoch
}

// expire removes the members whose session timed out and returns them.
func (g *Group) expire(now time.Time) (gone []string) {
	for id, m := range g.members {
		if now.After(m.deadline) {
			delete(g.members, id)
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		g.bump()
	}
	return gone
}
