package broker

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch sessions (KIP-227, Fetch v7+). A consumer that fetches the same
// partitions again and again names them once, in a full fetch that opens a
// session; its incremental fetches then carry only the partitions whose fetch
// position changed (and ForgottenTopics), and the broker answers only the
// partitions with records, an error or a changed high watermark, last stable
// offset or log start offset. The rules follow Kafka's FetchManager:
//
//   - epoch -1 (FINAL): a sessionless full fetch; a session it names is closed.
//   - epoch 0 (INITIAL): a full fetch that closes the session it names, if
//     any, and opens a new one (SessionID in the response; 0 when the cache
//     has no room).
//   - epoch > 0: incremental on the named session: FETCH_SESSION_ID_NOT_FOUND
//     if there is none, INVALID_FETCH_SESSION_EPOCH unless the epoch is the
//     next one expected.
//
// The cache holds max.incremental.fetch.session.cache.slots sessions (Kafka's
// default 1000). When it is full a new session takes the place of the least
// recently used one if that has been idle for 120 s (Kafka's fixed minimum),
// else of the smallest one if the new session is larger; otherwise the fetch
// goes sessionless.
const fetchSessionMinEviction = 120 * time.Second

// sessionKey names a partition the way the fetch version does: by topic name
// below v13, by topic id from v13.
type sessionKey struct {
	topic     string
	id        [16]byte
	partition int32
}

// sessionPartition is a partition of a session: where the client fetches
// from, and what the last response told it (so unchanged partitions are left
// out).
type sessionPartition struct {
	fetchTarget
	hw, lso, logStart int64 // -1 until sent
	moving            bool  // respond's mark while it moves the partition to the end
}

type fetchSession struct {
	id       int32
	epoch    int32 // the epoch the next incremental fetch must carry
	parts    []*sessionPartition
	byKey    map[sessionKey]*sessionPartition
	lastUsed time.Time
}

// fetchSessionCache is shared by every connection (a client may reconnect
// and continue its session, as with Kafka); mu guards it and its sessions.
type fetchSessionCache struct {
	mu       sync.Mutex
	sessions map[int32]*fetchSession
	slots    int
	now      func() time.Time
}

func newFetchSessionCache(slots int) *fetchSessionCache {
	return &fetchSessionCache{sessions: make(map[int32]*fetchSession), slots: slots, now: time.Now}
}

// fetchTarget is one partition to read in a fetch.
type fetchTarget struct {
	key         sessionKey
	offset      int64
	maxBytes    int32
	leaderEpoch int32
	// A follower's: the epoch of its last batch (v12+) and its log start.
	lastFetchedEpoch int32
	logStart         int64
}

// fetchContext is what a fetch reads and how its answer is shaped.
type fetchContext struct {
	targets     []fetchTarget
	session     *fetchSession // nil: sessionless
	incremental bool
	errorCode   int16 // the whole fetch fails with this
}

// keyFor names a partition of a fetch request or response by the version's
// topic naming.
func keyFor(version int16, topic string, id [16]byte, partition int32) sessionKey {
	if version >= 13 {
		return sessionKey{id: id, partition: partition}
	}
	return sessionKey{topic: topic, partition: partition}
}

func targetOf(version int16, rt *kmsg.FetchRequestTopic, rp kmsg.FetchRequestTopicPartition) fetchTarget {
	return fetchTarget{key: keyFor(version, rt.Topic, rt.TopicID, rp.Partition), offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, leaderEpoch: rp.CurrentLeaderEpoch,
		lastFetchedEpoch: rp.LastFetchedEpoch, logStart: rp.LogStartOffset}
}

func nextFetchEpoch(e int32) int32 {
	if e == 1<<31-1 {
		return 1
	}
	return e + 1
}

// open applies a fetch request to the cache and returns what to read: its
// targets are appended to dst.
func (c *fetchSessionCache) open(version int16, req *kmsg.FetchRequest, dst []fetchTarget) fetchContext {
	if version < 7 || req.SessionEpoch == -1 || req.SessionEpoch == 0 {
		if version >= 7 && req.SessionID != 0 {
			c.remove(req.SessionID)
		}
		fc := fetchContext{targets: dst}
		for i := range req.Topics {
			rt := &req.Topics[i]
			for _, rp := range rt.Partitions {
				fc.targets = append(fc.targets, targetOf(version, rt, rp))
			}
		}
		if version >= 7 && req.SessionEpoch == 0 {
			fc.session = c.create(fc.targets)
		}
		return fc
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[req.SessionID]
	switch {
	case s == nil:
		return fetchContext{errorCode: kerr.FetchSessionIDNotFound.Code}
	case s.epoch != req.SessionEpoch:
		return fetchContext{errorCode: kerr.InvalidFetchSessionEpoch.Code}
	}
	s.epoch = nextFetchEpoch(s.epoch)
	s.lastUsed = c.now()
	for i := range req.Topics {
		rt := &req.Topics[i]
		for _, rp := range rt.Partitions {
			t := targetOf(version, rt, rp)
			sp := s.byKey[t.key]
			if sp == nil {
				sp = &sessionPartition{hw: -1, lso: -1, logStart: -1}
				s.byKey[t.key] = sp
				s.parts = append(s.parts, sp)
			}
			sp.fetchTarget = t
		}
	}
	for i := range req.ForgottenTopics {
		ft := &req.ForgottenTopics[i]
		for _, p := range ft.Partitions {
			delete(s.byKey, keyFor(version, ft.Topic, ft.TopicID, p))
		}
	}
	kept := s.parts[:0]
	for _, sp := range s.parts {
		if s.byKey[sp.key] == sp {
			kept = append(kept, sp)
		}
	}
	clear(s.parts[len(kept):])
	s.parts = kept
	fc := fetchContext{session: s, incremental: true, targets: dst}
	for _, sp := range s.parts {
		fc.targets = append(fc.targets, sp.fetchTarget)
	}
	return fc
}

func (c *fetchSessionCache) remove(id int32) {
	c.mu.Lock()
	delete(c.sessions, id)
	c.mu.Unlock()
}

// create opens a session over targets, evicting another if the cache is
// full and Kafka's rules allow; nil when there is no room.
func (c *fetchSessionCache) create(targets []fetchTarget) *fetchSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.sessions) >= c.slots && !c.evictFor(len(targets), now) {
		return nil
	}
	s := &fetchSession{epoch: 1, byKey: make(map[sessionKey]*sessionPartition, len(targets)), lastUsed: now}
	for _, t := range targets {
		if s.byKey[t.key] != nil {
			continue
		}
		sp := &sessionPartition{fetchTarget: t, hw: -1, lso: -1, logStart: -1}
		s.byKey[t.key] = sp
		s.parts = append(s.parts, sp)
	}
	for s.id == 0 || c.sessions[s.id] != nil {
		s.id = rand.Int32N(1<<31-1) + 1
	}
	c.sessions[s.id] = s
	return s
}

// evictFor makes room for a session of size partitions. The caller holds mu.
func (c *fetchSessionCache) evictFor(size int, now time.Time) bool {
	var lru, smallest *fetchSession
	for _, s := range c.sessions {
		if lru == nil || s.lastUsed.Before(lru.lastUsed) {
			lru = s
		}
		if smallest == nil || len(s.parts) < len(smallest.parts) {
			smallest = s
		}
	}
	switch {
	case lru != nil && now.Sub(lru.lastUsed) >= fetchSessionMinEviction:
		delete(c.sessions, lru.id)
	case smallest != nil && len(smallest.parts) < size:
		delete(c.sessions, smallest.id)
	default:
		return false
	}
	return true
}

// respond shapes a filled response for the session: an incremental answer
// keeps only partitions with records, an error or news since the last answer
// (and moves those with records to the end of the session, so that under the
// response size limit every partition gets its turn, as Kafka does); every
// answer records what the client was told.
func (c *fetchSessionCache) respond(fc *fetchContext, resp *kmsg.FetchResponse, version int16) {
	s := fc.session
	resp.SessionID = s.id
	c.mu.Lock()
	defer c.mu.Unlock()
	var withBuf [8]*sessionPartition // on the stack while a response moves at most 8
	withData := withBuf[:0]
	kept := resp.Topics[:0]
	for _, rt := range resp.Topics {
		parts := rt.Partitions[:0]
		for _, rp := range rt.Partitions {
			sp := s.byKey[keyFor(version, rt.Topic, rt.TopicID, rp.Partition)]
			if sp == nil { // forgotten meanwhile
				continue
			}
			news := rp.HighWatermark != sp.hw || rp.LastStableOffset != sp.lso || rp.LogStartOffset != sp.logStart
			hasData := len(rp.RecordBatches) > 0
			sp.hw, sp.lso, sp.logStart = rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset
			if hasData {
				withData = append(withData, sp)
			}
			if !fc.incremental || hasData || news || rp.ErrorCode != 0 {
				parts = append(parts, rp)
			}
		}
		if len(parts) > 0 {
			rt.Partitions = parts
			kept = append(kept, rt)
		}
	}
	resp.Topics = kept
	if fc.incremental && len(withData) > 0 {
		// In place: the others keep their order, then withData's.
		for _, sp := range withData {
			sp.moving = true
		}
		rest := s.parts[:0]
		for _, sp := range s.parts {
			if !sp.moving {
				rest = append(rest, sp)
			}
		}
		s.parts = append(rest, withData...)
		for _, sp := range withData {
			sp.moving = false
		}
	}
}
