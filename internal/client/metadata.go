package client

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BrokerMeta is one broker as the cluster metadata describes it.
type BrokerMeta struct {
	ID   int32
	Host string
	Port int32
	Rack string // "" when broker.rack is unset
}

// Addr is host:port.
func (b BrokerMeta) Addr() string { return net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))) }

// PartitionMeta is one partition of a topic.
type PartitionMeta struct {
	ID          int32
	Leader      int32 // -1 while there is no leader
	LeaderEpoch int32 // -1 if the broker does not report epochs (Metadata < v7)
	Replicas    []int32
	ISR         []int32
	Offline     []int32
	Err         error // e.g. kerr.LeaderNotAvailable; nil when healthy
}

// TopicMeta is one topic. Partitions is sorted by ID, so Partitions[i].ID == i
// for a healthy topic.
type TopicMeta struct {
	Name       string
	ID         [16]byte // zero if the broker does not report topic ids (Metadata < v10)
	Internal   bool
	Partitions []PartitionMeta
	Err        error // e.g. kerr.UnknownTopicOrPartition
}

// Metadata is an immutable snapshot of the cluster; callers must not modify
// it or the slices it holds.
type Metadata struct {
	Brokers      map[int32]BrokerMeta
	Topics       map[string]TopicMeta // the topics asked for (all topics when none were named)
	ControllerID int32                // -1 if unknown
	ClusterID    string
}

// metaCache is the client's view of the cluster, shared by every caller.
type metaCache struct {
	mu         sync.Mutex // guards every field below
	brokers    map[int32]BrokerMeta
	controller int32
	clusterID  string
	topics     map[string]topicEntry
	allAt      time.Time           // when the full topic list was last fetched; zero = never, or invalidated
	wantAll    bool                // someone listed all topics: periodic refreshes fetch all
	wanted     map[string]struct{} // topics kept fresh by periodic refreshes
	running    *refresh            // the refresh in flight, joined by concurrent callers
	trigger    chan struct{}       // wakes metadataLoop for an early refresh; capacity 1

	// applied counts the responses stored; the last snapshot is handed
	// out again while none came since and the same topics are asked for
	// (a consumer asks for its topics' leaders before every Fetch).
	applied      uint64
	lastSnap     *Metadata
	lastTopics   []string
	lastSnapSeen uint64 // applied when lastSnap was made

	// seq numbers refreshes and invalidations in the order they happen, so
	// that a caller who invalidated a topic (say after adding partitions)
	// never takes an answer to a request sent before that.
	seq             uint64
	invalidated     map[string]uint64 // topic → seq of its last invalidation
	allInvalidated  uint64            // seq of the last invalidation of every topic
	lastInvalidated uint64            // seq of the last invalidation of any topic
}

// invalidatedLocked is the seq of topic's last invalidation. Called with
// m.mu held.
func (m *metaCache) invalidatedLocked(topic string) uint64 {
	return max(m.invalidated[topic], m.allInvalidated)
}

type topicEntry struct {
	meta    TopicMeta
	fetched time.Time // zero after InvalidateMetadata
}

// refresh is one Metadata request shared by every caller that needs it.
type refresh struct {
	seq    uint64 // m.seq when it started
	all    bool
	topics map[string]struct{}
	done   chan struct{}
	err    error // set before done is closed
}

// coversLocked reports whether r answers for topics (all when all): it asks
// for them and started after they were last invalidated. Called with m.mu
// held.
func (m *metaCache) coversLocked(r *refresh, all bool, topics []string) bool {
	if all {
		return r.all && r.seq > m.lastInvalidated
	}
	for _, t := range topics {
		if _, ok := r.topics[t]; (!ok && !r.all) || r.seq <= m.invalidatedLocked(t) {
			return false
		}
	}
	return true
}

func (m *metaCache) init() {
	m.brokers = make(map[int32]BrokerMeta)
	m.controller = -1
	m.topics = make(map[string]topicEntry)
	m.wanted = make(map[string]struct{})
	m.trigger = make(chan struct{}, 1)
	m.invalidated = make(map[string]uint64)
}

// healthy reports whether a topic's metadata can be trusted for the full
// metadata.max.age.ms; errored topics (a new topic without leaders yet) are
// re-fetched after retry.backoff.ms.
func (t *TopicMeta) healthy() bool {
	if t.Err != nil {
		return false
	}
	for _, p := range t.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return false
		}
	}
	return true
}

// fresh reports whether the cache can answer for topics (all when empty)
// without a refresh. Called with m.mu held.
func (cl *Client) freshLocked(topics []string, now time.Time) bool {
	m := &cl.meta
	if len(topics) == 0 {
		return !m.allAt.IsZero() && now.Sub(m.allAt) < cl.cfg.MetadataMaxAge
	}
	for _, t := range topics {
		e, ok := m.topics[t]
		if !ok || e.fetched.IsZero() {
			return false
		}
		age := now.Sub(e.fetched)
		if age >= cl.cfg.MetadataMaxAge || (!e.meta.healthy() && age >= cl.cfg.RetryBackoff) {
			return false
		}
	}
	return true
}

// Metadata returns the cluster's brokers and the named topics (every topic if
// none are named), from the cache when it is fresh: younger than
// metadata.max.age.ms, not invalidated, and (for topics with errors) younger
// than retry.backoff.ms. Otherwise it refreshes, sharing the request with
// concurrent callers. Named topics that do not exist come back with
// Err = kerr.UnknownTopicOrPartition; topics are never auto-created.
func (cl *Client) Metadata(ctx context.Context, topics ...string) (*Metadata, error) {
	all := len(topics) == 0
	for range 3 { // join a running refresh that does not cover us, then start our own
		m := &cl.meta
		m.mu.Lock()
		if all {
			m.wantAll = true
		}
		for _, t := range topics {
			m.wanted[t] = struct{}{}
		}
		if cl.freshLocked(topics, time.Now()) {
			snap := cl.snapshotLocked(topics)
			m.mu.Unlock()
			return snap, nil
		}
		r, covers := cl.startRefreshLocked(all, topics)
		m.mu.Unlock()
		if r == nil {
			return nil, ErrClosed
		}
		select {
		case <-r.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if !covers {
			continue
		}
		if r.err != nil {
			return nil, r.err
		}
		m.mu.Lock()
		snap := cl.snapshotLocked(topics)
		m.mu.Unlock()
		return snap, nil
	}
	return nil, fmt.Errorf("metadata for %v: refreshes kept being superseded", topics)
}

// InvalidateMetadata marks topics (all when none are named) stale, so the next
// Metadata call refetches them, and starts a background refresh. Callers use
// it on NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, FENCED_LEADER_EPOCH
// and similar errors.
func (cl *Client) InvalidateMetadata(topics ...string) {
	m := &cl.meta
	m.mu.Lock()
	m.seq++
	m.lastInvalidated = m.seq
	m.allAt = time.Time{} // the list of every topic holds the named ones too
	if len(topics) == 0 {
		m.allInvalidated = m.seq
		for t, e := range m.topics {
			e.fetched = time.Time{}
			m.topics[t] = e
		}
	}
	for _, t := range topics {
		m.invalidated[t] = m.seq
		if e, ok := m.topics[t]; ok {
			e.fetched = time.Time{}
			m.topics[t] = e
		}
	}
	m.mu.Unlock()
	select {
	case m.trigger <- struct{}{}:
	default:
	}
}

// refreshBrokers forces a refresh of the broker list (with the topics kept
// fresh anyway), for a broker id the cache does not know.
func (cl *Client) refreshBrokers(ctx context.Context) error {
	m := &cl.meta
	m.mu.Lock()
	r, _ := cl.startRefreshLocked(m.wantAll, slices.Collect(maps.Keys(m.wanted)))
	m.mu.Unlock()
	if r == nil {
		return ErrClosed
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// metadataLoop refreshes the wanted topics every metadata.max.age.ms and
// whenever InvalidateMetadata asks; it runs until Close.
func (cl *Client) metadataLoop() {
	m := &cl.meta
	t := time.NewTicker(cl.cfg.MetadataMaxAge)
	defer t.Stop()
	for {
		select {
		case <-cl.ctx.Done():
			return
		case <-t.C:
		case <-m.trigger:
		}
		m.mu.Lock()
		r, _ := cl.startRefreshLocked(m.wantAll, slices.Collect(maps.Keys(m.wanted)))
		m.mu.Unlock()
		if r == nil {
			return
		}
		select {
		case <-r.done:
			if r.err != nil {
				cl.log.Warn("metadata refresh failed", "err", r.err)
			}
		case <-cl.ctx.Done():
			return
		}
	}
}

// startRefreshLocked returns the running refresh, or starts one for the
// requested topics plus every wanted topic. covers says whether the returned
// refresh answers for the requested topics; if not, the caller waits for it
// and asks again. It returns nil after Close. Called with m.mu held.
func (cl *Client) startRefreshLocked(all bool, topics []string) (r *refresh, covers bool) {
	m := &cl.meta
	if m.running != nil {
		return m.running, m.coversLocked(m.running, all, topics)
	}
	m.seq++
	r = &refresh{seq: m.seq, all: all || m.wantAll, topics: make(map[string]struct{}), done: make(chan struct{})}
	for t := range m.wanted {
		r.topics[t] = struct{}{}
	}
	for _, t := range topics {
		r.topics[t] = struct{}{}
	}
	if !cl.spawn(func() { cl.runRefresh(r) }) {
		return nil, false
	}
	m.running = r
	return r, true
}

// runRefresh performs r on its own goroutine, so that a caller whose ctx ends
// does not abort the refresh others wait on.
func (cl *Client) runRefresh(r *refresh) {
	req := kmsg.NewPtrMetadataRequest()
	if !r.all {
		req.Topics = []kmsg.MetadataRequestTopic{} // empty, not nil: nil means all topics
		for t := range r.topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
	}
	// Never for "all topics": the flag only means something for names.
	req.AllowAutoTopicCreation = cl.cfg.AllowAutoTopicCreation && !r.all
	ctx, cancel := context.WithTimeout(cl.ctx, cl.cfg.DialTimeout+cl.cfg.RequestTimeout)
	defer cancel()
	kresp, err := cl.Request(ctx, req)
	if err == nil {
		err = cl.applyMetadata(r, kresp.(*kmsg.MetadataResponse))
	}
	if err != nil && cl.closedErr() != nil {
		err = ErrClosed
	}
	m := &cl.meta
	m.mu.Lock()
	m.running = nil
	r.err = err
	close(r.done)
	m.mu.Unlock()
}

// applyMetadata stores a Metadata response and reconciles broker connections.
func (cl *Client) applyMetadata(r *refresh, resp *kmsg.MetadataResponse) error {
	if len(resp.Brokers) == 0 {
		return fmt.Errorf("metadata response lists no brokers: %w", kerr.BrokerNotAvailable)
	}
	now := time.Now()
	brokers := make(map[int32]BrokerMeta, len(resp.Brokers))
	for _, b := range resp.Brokers {
		bm := BrokerMeta{ID: b.NodeID, Host: b.Host, Port: b.Port}
		if b.Rack != nil {
			bm.Rack = *b.Rack
		}
		brokers[b.NodeID] = bm
	}
	topics := make(map[string]topicEntry, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue // answered by id only; we always ask by name
		}
		tm := TopicMeta{Name: *t.Topic, ID: t.TopicID, Internal: t.IsInternal, Err: kerr.ErrorForCode(t.ErrorCode)}
		for _, p := range t.Partitions {
			tm.Partitions = append(tm.Partitions, PartitionMeta{
				ID: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: p.Replicas, ISR: p.ISR, Offline: p.OfflineReplicas,
				Err: kerr.ErrorForCode(p.ErrorCode),
			})
		}
		slices.SortFunc(tm.Partitions, func(a, b PartitionMeta) int { return int(a.ID - b.ID) })
		topics[tm.Name] = topicEntry{meta: tm, fetched: now}
	}

	m := &cl.meta
	m.mu.Lock()
	m.applied++
	m.brokers = brokers
	m.controller = resp.ControllerID
	if resp.ClusterID != nil {
		m.clusterID = *resp.ClusterID
	}
	if !r.all {
		for t := range r.topics {
			if _, ok := topics[t]; !ok {
				topics[t] = topicEntry{meta: TopicMeta{Name: t, Err: kerr.UnknownTopicOrPartition}, fetched: now}
			}
		}
	}
	// What was invalidated while the request was out stays stale: the
	// answer may predate the change that caused the invalidation.
	for t, e := range topics {
		if m.invalidatedLocked(t) >= r.seq {
			e.fetched = time.Time{}
			topics[t] = e
		}
	}
	if r.all {
		m.topics = topics
		if m.lastInvalidated < r.seq {
			m.allAt = now
		}
	} else {
		maps.Copy(m.topics, topics)
	}
	m.mu.Unlock()

	cl.updateBrokers(brokers)
	return nil
}

// updateBrokers keeps one broker per id at its current address, closing the
// connections of brokers that left or moved.
func (cl *Client) updateBrokers(brokers map[int32]BrokerMeta) {
	cl.brokersMu.Lock()
	defer cl.brokersMu.Unlock()
	for id, b := range cl.brokers {
		if bm, ok := brokers[id]; !ok || bm.Addr() != b.addr {
			delete(cl.brokers, id)
			b.close(fmt.Errorf("%w: broker %d left the metadata or moved", ErrConnectionClosed, id))
		}
	}
	for id, bm := range brokers {
		if _, ok := cl.brokers[id]; !ok {
			cl.brokers[id] = cl.newBroker(id, bm.Addr())
		}
	}
}

// snapshotLocked copies the cache into an immutable Metadata for topics (all
// known topics when none are named). Called with m.mu held.
func (cl *Client) snapshotLocked(topics []string) *Metadata {
	m := &cl.meta
	if m.lastSnap != nil && m.lastSnapSeen == m.applied && slices.Equal(m.lastTopics, topics) {
		return m.lastSnap
	}
	md := cl.newSnapshotLocked(topics)
	m.lastSnap, m.lastTopics, m.lastSnapSeen = md, slices.Clone(topics), m.applied
	return md
}

func (cl *Client) newSnapshotLocked(topics []string) *Metadata {
	m := &cl.meta
	md := &Metadata{
		Brokers:      maps.Clone(m.brokers),
		Topics:       make(map[string]TopicMeta),
		ControllerID: m.controller,
		ClusterID:    m.clusterID,
	}
	if len(topics) == 0 {
		for t, e := range m.topics {
			if e.meta.Err != kerr.UnknownTopicOrPartition {
				md.Topics[t] = e.meta
			}
		}
		return md
	}
	for _, t := range topics {
		if e, ok := m.topics[t]; ok {
			md.Topics[t] = e.meta
		} else {
			md.Topics[t] = TopicMeta{Name: t, Err: kerr.UnknownTopicOrPartition}
		}
	}
	return md
}
