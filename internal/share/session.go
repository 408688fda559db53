package share

import (
	"slices"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
)

type sessionKey struct{ group, member string }

// TP is a topic partition by topic id, as share sessions name them.
type TP struct {
	Topic     [16]byte
	Partition int32
}

// Session is a member's share session (KIP-932): the partitions it
// fetches, kept between requests so each ShareFetch only names changes,
// and the epoch its next request must carry.
type Session struct {
	epoch int32
	parts []TP
	// fresh are partitions added since the last response: an incremental
	// response names them even without records, as Kafka's does.
	fresh map[TP]bool
	// ended is set, under the Manager's mu, when the session ends (closed,
	// before its records are released, or replaced): a fetch of it still
	// running acquires nothing more (Fetch.Session), or its records would
	// stay locked until their locks expire.
	ended atomic.Bool
}

// SessionView is a share session as one ShareFetch sees it.
type SessionView struct {
	Parts []TP
	Fresh map[TP]bool
	// Session identifies the session, for CloseSessionIf.
	Session *Session
}

// FetchSession opens or advances the share session of a ShareFetch with
// epoch 0 (a new session, replacing the member's old one) or the session's
// current epoch (INVALID_SHARE_SESSION_EPOCH otherwise;
// SHARE_SESSION_NOT_FOUND when there is none). add and forget change its
// partitions. Epoch -1 is CheckClose then CloseSession.
//
// Replacing a session releases nothing, as Kafka's
// SharePartitionManager.newContext only drops the old session from its
// cache: acquisition locks belong to the member, not to a session, so the
// records stay the member's until it acknowledges them (kgo opens a new
// session after a connection reset and then acknowledges what it still
// holds) or their locks expire.
func (m *Manager) FetchSession(group, member string, epoch int32, add, forget []TP) (SessionView, *kerr.Error) {
	key := sessionKey{group, member}
	m.mu.Lock()
	s := m.sessions[key]
	switch {
	case epoch == 0:
		if s != nil {
			// A fetch of the old session still running acquires nothing
			// more: its answer may go to a client that has moved on.
			s.ended.Store(true)
		} else if m.cfg.MaxSessions > 0 && len(m.sessions) >= m.cfg.MaxSessions {
			m.mu.Unlock()
			return SessionView{}, kerr.ShareSessionLimitReached
		}
		s = &Session{fresh: map[TP]bool{}}
		m.sessions[key] = s
	case s == nil:
		m.mu.Unlock()
		return SessionView{}, kerr.ShareSessionNotFound
	case epoch != s.epoch:
		m.mu.Unlock()
		return SessionView{}, kerr.InvalidShareSessionEpoch
	}
	// Added first, then forgotten, as Kafka's ShareSession.update does: a
	// partition named in both (a client acknowledging the records of a
	// partition it no longer fetches, as kgo does after a revocation)
	// ends up out of the session. The other order would keep it in, and
	// the broker would go on acquiring records for a client that drops
	// them (it forgot the partition), each then locked until it expires,
	// again and again up to the delivery limit.
	for _, tp := range add {
		if !slices.Contains(s.parts, tp) {
			s.parts = append(s.parts, tp)
			s.fresh[tp] = true
		}
	}
	for _, tp := range forget {
		if i := slices.Index(s.parts, tp); i >= 0 {
			s.parts = slices.Delete(s.parts, i, i+1)
			delete(s.fresh, tp)
		}
	}
	s.epoch = nextEpoch(epoch)
	view := SessionView{Parts: slices.Clone(s.parts), Fresh: s.fresh, Session: s}
	s.fresh = map[TP]bool{}
	m.mu.Unlock()
	return view, nil
}

// AckSession checks and advances the share session of a ShareAcknowledge:
// it never opens one (epoch 0 is INVALID_SHARE_SESSION_EPOCH), and epoch
// -1 is CheckClose then CloseSession.
func (m *Manager) AckSession(group, member string, epoch int32) *kerr.Error {
	if epoch == 0 {
		return kerr.InvalidShareSessionEpoch
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[sessionKey{group, member}]
	switch {
	case s == nil:
		return kerr.ShareSessionNotFound
	case epoch != s.epoch:
		return kerr.InvalidShareSessionEpoch
	}
	s.epoch = nextEpoch(epoch)
	return nil
}

// CheckClose tells whether a request with epoch -1 may close the member's
// session: SHARE_SESSION_NOT_FOUND when it has none.
func (m *Manager) CheckClose(group, member string) *kerr.Error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions[sessionKey{group, member}] == nil {
		return kerr.ShareSessionNotFound
	}
	return nil
}

// CloseSession ends the member's share session and releases the records
// it still holds on the session's partitions (after the closing request's
// acknowledgements were applied).
func (m *Manager) CloseSession(group, member string) {
	m.closeSession(group, member, nil, ReleaseSessionClosed)
}

// CloseSessionIf is CloseSession of the member's session only if it still
// is s (nil: whichever it is): the connection that opened s went away, as
// Kafka drops a share session with its connection, but a newer session
// must stay.
func (m *Manager) CloseSessionIf(group, member string, only *Session) {
	m.closeSession(group, member, only, ReleaseConnClosed)
}

func (m *Manager) closeSession(group, member string, only *Session, why Release) {
	key := sessionKey{group, member}
	m.mu.Lock()
	s := m.sessions[key]
	if only != nil && s != only {
		m.mu.Unlock()
		return
	}
	m.endSession(key)
	var parts map[Key]*sharePart
	if s != nil {
		parts = m.sessionParts(group, s)
	}
	m.mu.Unlock()
	m.releaseMember(parts, member, m.cfg.GroupConfig(group).Limits, why)
	if s != nil {
		m.evictIdle(group, s.parts)
	}
}

// evictIdle forgets, on a cluster's leader (whose state Read reads again),
// the group's share-partitions among tps that no share session uses any
// more: what they hold is durable (the records of a closed session were
// released and saved), and their next use reads the state again, with
// what an administrator changed meanwhile (AlterShareGroupOffsets and
// DeleteShareGroupOffsets need a group without members).
func (m *Manager) evictIdle(group string, tps []TP) {
	if m.cfg.Read == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, tp := range tps {
		used := false
		for sk, s := range m.sessions {
			if sk.group == group && slices.Contains(s.parts, tp) {
				used = true
				break
			}
		}
		if !used {
			delete(m.parts, Key{group, tp.Topic, tp.Partition})
		}
	}
}

// endSession removes the member's share session, if any, and marks it
// ended (the caller holds mu and releases its records next).
func (m *Manager) endSession(key sessionKey) {
	if s := m.sessions[key]; s != nil {
		s.ended.Store(true)
		delete(m.sessions, key)
	}
}

// sessionParts returns the share-partitions of s (the caller holds mu).
func (m *Manager) sessionParts(group string, s *Session) map[Key]*sharePart {
	out := map[Key]*sharePart{}
	for _, tp := range s.parts {
		k := Key{group, tp.Topic, tp.Partition}
		if sp := m.parts[k]; sp != nil {
			out[k] = sp
		}
	}
	return out
}
