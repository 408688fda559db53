package replica

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/storage"
)

// Config is what the Manager needs of its broker.
type Config struct {
	NodeID int32
	// LagMax is replica.lag.time.max.ms: a follower not caught up for this
	// long leaves the ISR (checked every half of it).
	LagMax time.Duration
	// The replica fetchers' keys: num.replica.fetchers,
	// replica.fetch.max.bytes (per partition),
	// replica.fetch.response.max.bytes, replica.fetch.wait.max.ms,
	// replica.fetch.min.bytes, replica.fetch.backoff.ms.
	NumFetchers           int
	FetchMaxBytes         int32
	FetchResponseMaxBytes int32
	FetchWait             time.Duration
	FetchMinBytes         int32
	FetchBackoff          time.Duration
	// MinISR is a topic's min.insync.replicas.
	MinISR func(topic string) int
	// BrokerEpoch is this broker's current epoch (0 before it registered).
	BrokerEpoch func() int64
	// Send sends a request to broker id's Kafka endpoint.
	Send func(ctx context.Context, id int32, req kmsg.Request) (kmsg.Response, error)
	// AlterPartition sends an AlterPartition request to the active
	// controller.
	AlterPartition func(ctx context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error)
	Logger         *slog.Logger
}

// Broker is what the Manager knows of a registered broker from the image.
type Broker struct {
	Epoch        int64
	Fenced       bool
	ShuttingDown bool
}

// Manager runs replication for one broker (Kafka's ReplicaManager): the
// partitions' states, the replica fetchers, the ISR checks and the
// AlterPartition proposals.
type Manager struct {
	cfg Config
	log *slog.Logger

	brokers atomic.Pointer[map[int32]Broker]

	// mu guards parts, fetchers and assigned; it is taken before a
	// Partition's mu, never after.
	mu       sync.Mutex
	parts    map[*Partition]struct{}
	fetchers map[fetcherKey]*fetcher
	assigned map[*Partition]fetcherKey

	alterMu    sync.Mutex
	alterQueue []*Partition
	alterWake  chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewManager starts a Manager's ISR and AlterPartition loops.
func NewManager(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.NumFetchers = max(cfg.NumFetchers, 1)
	m := &Manager{cfg: cfg, log: cfg.Logger, parts: map[*Partition]struct{}{}, fetchers: map[fetcherKey]*fetcher{},
		assigned: map[*Partition]fetcherKey{}, alterWake: make(chan struct{}, 1)}
	empty := map[int32]Broker{}
	m.brokers.Store(&empty)
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(2)
	go m.isrLoop()
	go m.alterLoop()
	return m
}

// Close stops the fetchers and loops and waits for them.
func (m *Manager) Close() {
	m.cancel()
	m.mu.Lock()
	for _, f := range m.fetchers {
		f.cancel()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// SetBrokers replaces the registered brokers (from the image).
func (m *Manager) SetBrokers(b map[int32]Broker) { m.brokers.Store(&b) }

func (m *Manager) broker(id int32) (Broker, bool) {
	b, ok := (*m.brokers.Load())[id]
	return b, ok
}

// eligible is Kafka's isReplicaIsrEligible: registered, not fenced nor
// shutting down, and fetching with the broker epoch it is registered at
// (or with none, before Fetch v15).
func (m *Manager) eligible(id int32, f *follower) bool {
	b, ok := m.broker(id)
	return ok && !b.Fenced && !b.ShuttingDown && f.fetched && (f.brokerEpoch == -1 || f.brokerEpoch == b.Epoch)
}

// NewPartition adds a partition whose log is l, with the high watermark
// it had (its replication-offset-checkpoint entry, 0 when none); notify
// is called when the high watermark moves on the leader. Apply gives it
// its state.
func (m *Manager) NewPartition(topic string, index int32, topicID [16]byte, l *storage.Log, hw int64, notify func()) *Partition {
	l.SetHighWatermark(hw)
	p := &Partition{Topic: topic, Index: index, TopicID: topicID, Log: l, m: m, notify: notify}
	m.mu.Lock()
	m.parts[p] = struct{}{}
	m.mu.Unlock()
	return p
}

// Remove stops replicating p (its topic was deleted).
func (m *Manager) Remove(p *Partition) {
	p.mu.Lock()
	p.removed, p.leader = true, false
	p.leading.Store(false)
	p.wakeLocked()
	p.mu.Unlock()
	m.unassign(p)
	m.mu.Lock()
	delete(m.parts, p)
	m.mu.Unlock()
}

// Apply makes p follow st, the image's state (Kafka's makeLeader and
// makeFollower): it becomes leader at a new epoch, follows a new leader or
// epoch (its fetcher truncates through the leader's diverging epochs) or
// as a replica a reassignment added, or stops and empties its log when no
// longer a replica; at the same epoch it takes the ISR and partition
// epoch. Called in metadata log order; it blocks only to delete a removed
// replica's records.
func (m *Manager) Apply(p *Partition, st State) {
	now := time.Now()
	me := m.cfg.NodeID
	p.mu.Lock()
	prev, first := p.state, !p.applied
	p.state, p.applied = st.clone(), true
	follow := int32(-1)
	stopFetching, deleteLocal := false, false
	switch {
	case p.removed:
	case st.Leader == me:
		if first || !p.leader || prev.LeaderEpoch != st.LeaderEpoch {
			m.log.Info("becoming leader", "topic", p.Topic, "partition", p.Index, "leader_epoch", st.LeaderEpoch, "isr", st.ISR, "log_end_offset", p.Log.EndOffset(), "high_watermark", p.Log.HighWatermark())
			p.becomeLeaderLocked(now)
			stopFetching = true
		} else if prev.PartitionEpoch != st.PartitionEpoch {
			p.proposed = nil
			p.syncFollowersLocked()
		}
		if p.maybeIncrementHWLocked(now) {
			p.notify()
		}
	case slices.Contains(st.Replicas, me):
		// A replica a reassignment adds starts fetching at the same
		// leader and epoch.
		if first || p.leader || prev.Leader != st.Leader || prev.LeaderEpoch != st.LeaderEpoch || !slices.Contains(prev.Replicas, me) {
			p.leader, p.followers, p.proposed = false, nil, nil
			stopFetching = true
			if st.Leader >= 0 {
				follow = st.Leader
			}
		}
	default:
		p.leader, p.followers, p.proposed = false, nil, nil
		stopFetching = true
		deleteLocal = p.Log.EndOffset() > 0 || p.Log.StartOffset() > 0
	}
	p.leading.Store(p.leader)
	p.wakeLocked()
	p.mu.Unlock()
	if stopFetching {
		m.unassign(p)
	}
	if deleteLocal {
		// No longer a replica (a reassignment removed it, possibly
		// while this broker was down): its copy goes, as Kafka's
		// StopReplica with delete. The log object stays, empty, as every
		// node keeps one per partition; its fetcher is gone, so nothing
		// writes it meanwhile.
		m.log.Info("not a replica: deleting the local copy", "topic", p.Topic, "partition", p.Index, "log_end_offset", p.Log.EndOffset())
		p.mu.Lock()
		if err := p.Log.TruncateFullyAndStartAt(0); err != nil {
			m.log.Warn("deleting the local copy of a partition this broker no longer replicates", "topic", p.Topic, "partition", p.Index, "err", err)
		}
		p.Log.SetHighWatermark(0)
		p.mu.Unlock()
	}
	if follow >= 0 {
		m.assign(p, follow, st.LeaderEpoch)
	}
}

// fetcherIndex spreads partitions over num.replica.fetchers per leader
// (Kafka hashes topic and partition the same way in spirit).
func (m *Manager) fetcherIndex(p *Partition) int {
	h := fnv.New32a()
	h.Write([]byte(p.Topic))
	return int((h.Sum32()*31 + uint32(p.Index)) % uint32(m.cfg.NumFetchers))
}

func (m *Manager) assign(p *Partition, leader, epoch int32) {
	key := fetcherKey{leader: leader, index: m.fetcherIndex(p)}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return
	}
	f := m.fetchers[key]
	if f == nil {
		f = m.newFetcher(key)
		m.fetchers[key] = f
	}
	m.assigned[p] = key
	f.add(p, epoch)
}

func (m *Manager) unassign(p *Partition) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key, ok := m.assigned[p]
	if !ok {
		return
	}
	delete(m.assigned, p)
	if f := m.fetchers[key]; f != nil && f.remove(p) == 0 {
		// An idle fetcher stops (Kafka's shutdownIdleFetcherThreads).
		f.cancel()
		delete(m.fetchers, key)
	}
}

// isrLoop checks every leader's ISR every half replica.lag.time.max.ms.
func (m *Manager) isrLoop() {
	defer m.wg.Done()
	t := time.NewTicker(max(m.cfg.LagMax/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case now := <-t.C:
			m.mu.Lock()
			parts := slices.Collect(maps.Keys(m.parts))
			m.mu.Unlock()
			for _, p := range parts {
				p.maybeShrink(now)
			}
		}
	}
}

func (m *Manager) queueAlter(p *Partition) {
	m.alterMu.Lock()
	m.alterQueue = append(m.alterQueue, p)
	m.alterMu.Unlock()
	select {
	case m.alterWake <- struct{}{}:
	default:
	}
}

// alterLoop sends the queued ISR proposals to the controller, together,
// one request at a time (Kafka's AlterPartitionManager).
func (m *Manager) alterLoop() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.alterWake:
		}
		m.alterMu.Lock()
		queue := m.alterQueue
		m.alterQueue = nil
		m.alterMu.Unlock()
		if len(queue) == 0 {
			continue
		}
		if retry := m.sendAlter(queue); len(retry) > 0 {
			select {
			case <-m.ctx.Done():
				return
			case <-time.After(m.cfg.FetchBackoff):
			}
			for _, p := range retry {
				m.queueAlter(p)
			}
		}
	}
}

type alterKey struct {
	id        [16]byte
	partition int32
}

// sendAlter sends one AlterPartition for the partitions' proposals and
// returns those to send again (the controller could not be reached).
func (m *Manager) sendAlter(queue []*Partition) (retry []*Partition) {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.BrokerID, req.BrokerEpoch = m.cfg.NodeID, m.cfg.BrokerEpoch()
	byKey := map[alterKey]*Partition{}
	topics := map[[16]byte]int{}
	for _, p := range queue {
		p.mu.Lock()
		p.queued = false
		if p.proposed == nil || !p.leader || p.removed {
			p.proposed = nil
			p.mu.Unlock()
			continue
		}
		rp := kmsg.NewAlterPartitionRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = p.Index, p.state.LeaderEpoch, p.state.PartitionEpoch
		rp.NewISR = slices.Clone(p.proposed)
		for _, id := range p.proposed {
			e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
			e.BrokerID, e.BrokerEpoch = id, -1
			if id == m.cfg.NodeID {
				e.BrokerEpoch = req.BrokerEpoch
			} else if f := p.followers[id]; f != nil && f.fetched {
				e.BrokerEpoch = f.brokerEpoch
			}
			rp.NewEpochISR = append(rp.NewEpochISR, e)
		}
		p.queued = true
		p.mu.Unlock()
		i, ok := topics[p.TopicID]
		if !ok {
			i = len(req.Topics)
			topics[p.TopicID] = i
			rt := kmsg.NewAlterPartitionRequestTopic()
			rt.Topic, rt.TopicID = p.Topic, p.TopicID
			req.Topics = append(req.Topics, rt)
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		byKey[alterKey{p.TopicID, p.Index}] = p
	}
	if len(byKey) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
	defer cancel()
	resp, err := m.cfg.AlterPartition(ctx, req)
	if err == nil && resp.ErrorCode != 0 {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		m.log.Debug("AlterPartition failed; retrying", "err", err)
		for _, p := range byKey {
			p.mu.Lock()
			p.queued = false
			p.mu.Unlock()
			retry = append(retry, p)
		}
		return retry
	}
	for _, rt := range resp.Topics {
		id := rt.TopidID
		if id == ([16]byte{}) {
			for _, p := range byKey {
				if p.Topic == rt.Topic {
					id = p.TopicID
				}
			}
		}
		for _, rp := range rt.Partitions {
			p := byKey[alterKey{id, rp.Partition}]
			if p == nil {
				continue
			}
			delete(byKey, alterKey{id, rp.Partition})
			p.mu.Lock()
			p.queued = false
			p.mu.Unlock()
			p.alterDone(rp.LeaderEpoch, rp.PartitionEpoch, rp.ISR, kerr.ErrorForCode(rp.ErrorCode))
		}
	}
	for _, p := range byKey {
		p.mu.Lock()
		p.queued = false
		p.mu.Unlock()
		p.alterDone(0, 0, nil, errors.New("no answer for the partition"))
	}
	return nil
}
