package share

import (
	"errors"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Key names a share-partition: a group's view of one topic partition
// (by topic id, so a re-created topic starts over).
type Key struct {
	Group     string
	Topic     [16]byte
	Partition int32
}

// Store keeps share-partition state durable: Save replaces a partition's
// state, Delete drops it. Calls for one key never overlap. leaderEpoch is
// the epoch of the share-partition leader the state belongs to (0 on a
// single node): on a cluster the share coordinator refuses writes of an
// older leader (see ReadState).
type Store interface {
	Save(k Key, start int64, batches []StateBatch, leaderEpoch int32) error
	Delete(k Key) error
}

// Loaded is a share-partition's durable state as a cluster's share
// coordinator has it, read when a leader first serves the partition.
type Loaded struct {
	Found   bool // false: the group has no state for the partition yet
	Start   int64
	Batches []StateBatch
	// LeaderEpoch is the epoch of the partition's leadership that read it:
	// the leader's writes carry it.
	LeaderEpoch int32
}

// GroupConfig is the configuration a group runs with: the broker's
// group.share.* values overridden by the group's share.* configs.
type GroupConfig struct {
	Limits
	HeartbeatInterval time.Duration // share.heartbeat.interval.ms
	SessionTimeout    time.Duration // share.session.timeout.ms
}

// Config configures a Manager.
type Config struct {
	Store Store
	// GroupConfig returns a group's configuration.
	GroupConfig func(group string) GroupConfig
	// MaxGroupSize is group.share.max.size; MaxSessions is
	// group.share.max.share.sessions.
	MaxGroupSize, MaxSessions int
	// Read, when set (a cluster's share-partition leader), loads a
	// share-partition's state the first time it is used: the leader holds
	// only the partitions it serves, the durable state is elsewhere. Nil on
	// a single node, where Load restored everything at start.
	Read func(k Key) (Loaded, error)
}

// Manager is the broker's share-group state: groups and their members,
// share sessions, and share-partitions with their in-flight records.
//
// mu guards groups, sessions and parts (the maps and the groups in them);
// each share-partition has its own mutex, so fetches and acknowledgements
// of different partitions run in parallel. Lock order: mu, then a
// partition's mu; never the reverse.
type Manager struct {
	cfg      Config
	mu       sync.Mutex
	groups   map[string]*Group
	sessions map[sessionKey]*Session
	parts    map[Key]*sharePart
	stats    Stats
}

// Stats returns the Manager's counts of what became of acquired records.
func (m *Manager) Stats() *Stats { return &m.stats }

// newPart wraps p as a share-partition counted in the Manager's Stats.
func (m *Manager) newPart(p *Partition, epoch int32) *sharePart {
	p.stats = &m.stats
	return &sharePart{p: p, epoch: epoch, avail: make(chan struct{})}
}

// sharePart is one share-partition behind its lock; avail is closed (and
// replaced) when records become available, waking long-polling fetches.
// epoch is the leader epoch its state belongs to: on a leader, the one it
// loaded the state at; on a share coordinator, the newest it has seen.
type sharePart struct {
	mu    sync.Mutex
	p     *Partition
	epoch int32
	avail chan struct{}
	// w is a cluster leader's write-behind of p (see mutate).
	w writeBehind
}

// writeBehind coalesces a cluster leader's writes of one share-partition:
// each change is applied at once and numbered (version); one write at a
// time saves the newest state, which holds every change before it, so a
// change waits for at most the write in flight and the next one, however
// many changes came meanwhile.
type writeBehind struct {
	version, saved uint64 // the newest change; the newest one durable
	failed         uint64 // changes up to it failed to be written (err)
	err            error
	writing        bool
	done           chan struct{} // closed (and replaced) after each write
}

// NewManager returns an empty Manager; Load restores durable state.
func NewManager(cfg Config) *Manager {
	return &Manager{cfg: cfg, groups: map[string]*Group{}, sessions: map[sessionKey]*Session{}, parts: map[Key]*sharePart{}}
}

// Load restores one share-partition's durable state at startup (or, on a
// cluster's share coordinator, when it takes over the group); its group
// exists from then on (Empty until members join).
func (m *Manager) Load(k Key, start int64, batches []StateBatch, leaderEpoch int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.group(k.Group)
	m.parts[k] = m.newPart(Restore(start, batches), leaderEpoch)
}

// Forget drops a share-partition restored by Load (a tombstone replayed
// after it).
func (m *Manager) Forget(k Key) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.parts, k)
}

func (m *Manager) group(id string) *Group {
	g := m.groups[id]
	if g == nil {
		g = &Group{ID: id, members: map[string]*Member{}}
		m.groups[id] = g
	}
	return g
}

// Heartbeat runs a ShareGroupHeartbeat. meta resolves a subscribed topic
// name; a member that leaves has its records released and its share
// session closed.
func (m *Manager) Heartbeat(req HeartbeatRequest, meta func(string) (TopicInfo, bool), now time.Time) (HeartbeatResult, GroupConfig) {
	gc := m.cfg.GroupConfig(req.Group)
	m.mu.Lock()
	g := m.groups[req.Group]
	if g == nil && req.Epoch != 0 {
		m.mu.Unlock()
		return HeartbeatResult{Err: kerr.UnknownMemberID, Message: "Member " + req.Member + " is not a member of group " + req.Group + "."}, gc
	}
	g = m.group(req.Group)
	res := g.heartbeat(req, meta, now, gc.SessionTimeout, m.cfg.MaxGroupSize)
	var parts map[Key]*sharePart
	if res.Left {
		m.endSession(sessionKey{req.Group, req.Member})
		parts = m.groupParts(req.Group)
	}
	m.mu.Unlock()
	m.releaseMember(parts, req.Member, gc.Limits, ReleaseMemberLeft)
	return res, gc
}

// groupParts returns a group's share-partitions (the caller holds mu).
func (m *Manager) groupParts(group string) map[Key]*sharePart {
	out := map[Key]*sharePart{}
	for k, sp := range m.parts {
		if k.Group == group {
			out[k] = sp
		}
	}
	return out
}

func (m *Manager) groupKeys(group string) []Key {
	var out []Key
	for k := range m.parts {
		if k.Group == group {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, compareKeys)
	return out
}

func compareKeys(a, b Key) int {
	if c := slices.Compare(a.Topic[:], b.Topic[:]); c != 0 {
		return c
	}
	return int(a.Partition - b.Partition)
}

// releaseMember releases member's records in parts: it left the group or
// its share session ended, as why says.
func (m *Manager) releaseMember(parts map[Key]*sharePart, member string, lim Limits, why Release) {
	for k, sp := range parts {
		// Waited for: a session's partitions may be forgotten next
		// (evictIdle), and what the next leader or an offsets change
		// sees must not be overwritten by a late release.
		m.mutate(sp, k, true, func(p *Partition) (bool, bool) { return p.ReleaseMember(member, lim, why) })
	}
}

// mutate applies fn to a copy of the partition's state, saves it if fn
// changed it and only then makes it current, so a failed write leaves the
// state as it was durably; waiters are woken if records became available
// or the window moved on.
//
// A cluster's leader (Config.Read set), whose writes go to the share
// coordinator and wait for replication, makes the change current at once
// instead and has it written behind (writeBehind), so that fetches and
// other acknowledgements of the partition go on meanwhile; with wait it
// returns once a write holding the change is durable, or failed. A change
// whose write failed stays current and goes with the next write: its
// outcome is unknown to the caller, as after a timeout, and at-least-once
// still holds (a deposed leader's changes are read by no one).
func (m *Manager) mutate(sp *sharePart, k Key, wait bool, fn func(p *Partition) (released, changed bool)) error {
	w, err := m.change(sp, k, fn)
	if err != nil || !wait {
		return err
	}
	return w()
}

// change is mutate, the wait for the write behind returned.
func (m *Manager) change(sp *sharePart, k Key, fn func(p *Partition) (released, changed bool)) (wait func() error, err error) {
	done := func() error { return nil }
	sp.mu.Lock()
	defer sp.mu.Unlock()
	next := sp.p.clone()
	released, changed := fn(next)
	if !changed {
		return done, nil
	}
	if m.cfg.Read == nil {
		if err := m.save(k, sp.epoch, next); err != nil {
			return done, err
		}
	}
	// A moved SPSO frees room in the window of group.share.partition.
	// max.record.locks: a fetch waiting on a full window may acquire now.
	advanced := next.Start() > sp.p.Start()
	sp.p = next
	if released || advanced {
		close(sp.avail)
		sp.avail = make(chan struct{})
	}
	if m.cfg.Read == nil {
		return done, nil
	}
	w := &sp.w
	w.version++
	mine := w.version
	if w.done == nil {
		w.done = make(chan struct{})
	}
	if !w.writing {
		w.writing = true
		go m.writeBehind(sp, k)
	}
	return func() error {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		for {
			switch {
			case w.saved >= mine:
				return nil
			case w.failed >= mine:
				return w.err
			}
			done := w.done
			sp.mu.Unlock()
			<-done
			sp.mu.Lock()
		}
	}, nil
}

// writeBehind writes sp's newest state until what is durable is current.
func (m *Manager) writeBehind(sp *sharePart, k Key) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	w := &sp.w
	for w.saved < w.version && w.failed < w.version {
		v, epoch := w.version, sp.epoch
		start, batches := sp.p.Snapshot()
		sp.mu.Unlock()
		err := m.cfg.Store.Save(k, start, batches, epoch)
		sp.mu.Lock()
		if err != nil {
			w.failed, w.err = v, err
		} else {
			w.saved = v
		}
		close(w.done)
		w.done = make(chan struct{})
	}
	w.writing = false
}

func (m *Manager) save(k Key, epoch int32, p *Partition) error {
	start, batches := p.Snapshot()
	return m.cfg.Store.Save(k, start, batches, epoch)
}

func (p *Partition) clone() *Partition {
	c := *p
	c.recs = slices.Clone(p.recs)
	return &c
}

// Tick expires acquisition locks and member sessions as of now.
func (m *Manager) Tick(now time.Time) {
	type gone struct {
		group, member string
	}
	var left []gone
	m.mu.Lock()
	for id, g := range m.groups {
		for _, mid := range g.expire(now) {
			left = append(left, gone{id, mid})
			m.endSession(sessionKey{id, mid})
		}
	}
	parts := maps.Clone(m.parts)
	m.mu.Unlock()
	for _, l := range left {
		m.mu.Lock()
		gp := m.groupParts(l.group)
		m.mu.Unlock()
		m.releaseMember(gp, l.member, m.cfg.GroupConfig(l.group).Limits, ReleaseMemberExpired)
	}
	for k, sp := range parts {
		lim := m.cfg.GroupConfig(k.Group).Limits
		m.mutate(sp, k, false, func(p *Partition) (bool, bool) { return p.Expire(now, lim) })
	}
}

// part returns k's share-partition, creating it at init() when it has no
// state yet (the group's share.auto.offset.reset decides where).
func (m *Manager) part(k Key, init func() int64) (*sharePart, error) {
	m.mu.Lock()
	sp := m.parts[k]
	m.mu.Unlock()
	if sp != nil || (init == nil && m.cfg.Read == nil) {
		return sp, nil
	}
	var p *Partition
	var epoch int32
	if m.cfg.Read != nil {
		l, err := m.cfg.Read(k)
		if err != nil {
			return nil, err
		}
		if l.Found {
			p, epoch = Restore(l.Start, l.Batches), l.LeaderEpoch
		} else if init == nil {
			return nil, nil
		} else {
			epoch = l.LeaderEpoch
		}
	}
	if p == nil {
		p = NewPartition(init())
		if err := m.save(k, epoch, p); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.parts[k]; cur != nil {
		return cur, nil
	}
	m.group(k.Group)
	sp = m.newPart(p, epoch)
	m.parts[k] = sp
	return sp, nil
}

// Initialize makes sure k has state, starting it at init() if not: Kafka
// initializes a share-partition when it is first assigned.
func (m *Manager) Initialize(k Key, init func() int64) error {
	_, err := m.part(k, init)
	return err
}

// ErrStorage wraps a failure of the Store.
var ErrStorage = errors.New("share state write failed")

// Acknowledge applies member's acknowledgements to k.
func (m *Manager) Acknowledge(k Key, member string, batches []AckBatch, now time.Time) *kerr.Error {
	return m.AcknowledgeLater(k, member, batches, now)()
}

// AcknowledgeLater is Acknowledge in two steps: the acknowledgements are
// applied now, and the function returned waits until they are durable
// and gives their outcome, so that a cluster's leader can acquire records
// for the same ShareFetch while the write is replicated.
func (m *Manager) AcknowledgeLater(k Key, member string, batches []AckBatch, now time.Time) func() *kerr.Error {
	sp, _ := m.part(k, nil)
	if sp == nil {
		return func() *kerr.Error { return kerr.InvalidRecordState }
	}
	lim := m.cfg.GroupConfig(k.Group).Limits
	var kerrOut *kerr.Error
	wait, err := m.change(sp, k, func(p *Partition) (bool, bool) {
		released, e := p.Acknowledge(member, batches, now, lim)
		kerrOut = e
		return released, e == nil
	})
	return func() *kerr.Error {
		if err == nil {
			err = wait()
		}
		if err != nil {
			// A cluster's leader passes on the share coordinator's
			// answer (a newer leader fenced this one, the coordinator
			// moving).
			var ke *kerr.Error
			if errors.As(err, &ke) {
				return ke
			}
			return kerr.KafkaStorageError
		}
		return kerrOut
	}
}

// Fetch is one share-partition acquisition: the log's bounds and a
// reader of the log.
type Fetch struct {
	Member     string
	HWM        int64 // the end of what may be delivered
	LogStart   int64
	MaxRecords int
	// Init gives the SPSO of a share-partition without state.
	Init func() int64
	// Read reads the log from offset from and returns the offset after the
	// last whole batch it read.
	Read func(from int64) (readEnd int64, err error)
	// Session is the share session fetching: once it ended nothing more
	// is acquired for it.
	Session *Session
}

// Acquire acquires records of k for f.Member. It returns the runs
// acquired and the channel closed when more may become available.
func (m *Manager) Acquire(k Key, f Fetch, now time.Time) ([]Range, <-chan struct{}, error) {
	sp, err := m.part(k, f.Init)
	if err != nil {
		return nil, nil, err
	}
	lim := m.cfg.GroupConfig(k.Group).Limits
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.p.Start() < f.LogStart {
		next := sp.p.clone()
		next.MoveStart(f.LogStart)
		if err := m.save(k, sp.epoch, next); err != nil {
			return nil, sp.avail, err
		}
		sp.p = next
	}
	from, ok := sp.p.NextAcquirable(f.HWM, lim)
	// A closed session's records are released under sp.mu after ended
	// was set, so none acquired here can outlive it (a replaced session's
	// stay the member's, as Kafka keeps them).
	if !ok || f.MaxRecords <= 0 || (f.Session != nil && f.Session.ended.Load()) {
		return nil, sp.avail, nil
	}
	readEnd, err := f.Read(from)
	if err != nil {
		return nil, sp.avail, err
	}
	return sp.p.Acquire(f.Member, from, min(readEnd, f.HWM), f.MaxRecords, now, lim), sp.avail, nil
}

// GroupInfo is a group as ShareGroupDescribe shows it.
type GroupInfo struct {
	ID, State              string
	Epoch, AssignmentEpoch int32
	Members                []Member
}

// Describe returns a group's description, false if there is no such
// share group.
func (m *Manager) Describe(id string) (GroupInfo, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.groups[id]
	if g == nil {
		return GroupInfo{}, false
	}
	gi := GroupInfo{ID: id, State: g.State(), Epoch: g.Epoch, AssignmentEpoch: g.AssignmentEpoch}
	for _, mem := range g.Members() {
		gi.Members = append(gi.Members, *mem)
	}
	return gi, true
}

// Groups lists the share groups with their state.
func (m *Manager) Groups() []GroupInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]GroupInfo, 0, len(m.groups))
	for id, g := range m.groups {
		out = append(out, GroupInfo{ID: id, State: g.State()})
	}
	slices.SortFunc(out, func(a, b GroupInfo) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

// IsGroup reports whether id is a share group.
func (m *Manager) IsGroup(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.groups[id] != nil
}

// PartitionOffsets is a share-partition as DescribeShareGroupOffsets
// shows it.
type PartitionOffsets struct {
	Key
	Start int64
	// Done counts the records at or past the SPSO already acknowledged or
	// archived (Kafka's delivery complete count), for the lag.
	Done int64
}

// Offsets returns the group's share-partitions.
func (m *Manager) Offsets(group string) []PartitionOffsets {
	m.mu.Lock()
	keys := m.groupKeys(group)
	parts := make([]*sharePart, len(keys))
	for i, k := range keys {
		parts[i] = m.parts[k]
	}
	m.mu.Unlock()
	out := make([]PartitionOffsets, len(keys))
	for i, sp := range parts {
		sp.mu.Lock()
		out[i] = PartitionOffsets{Key: keys[i], Start: sp.p.Start(), Done: int64(len(sp.p.recs) - sp.p.InFlight())}
		sp.mu.Unlock()
	}
	return out
}

// errNotEmpty is Kafka's answer to changing a group with members.
var errNotEmpty = kerr.NonEmptyGroup

// AlterOffsets sets the SPSO of k (AlterShareGroupOffsets): only while the
// group has no members, as Kafka requires.
func (m *Manager) AlterOffsets(k Key, offset int64) *kerr.Error {
	m.mu.Lock()
	if g := m.groups[k.Group]; g != nil && len(g.members) > 0 {
		m.mu.Unlock()
		return errNotEmpty
	}
	m.mu.Unlock()
	sp, err := m.part(k, func() int64 { return offset })
	if err != nil {
		return kerr.KafkaStorageError
	}
	if err := m.mutate(sp, k, true, func(p *Partition) (bool, bool) { p.Reset(offset); return true, true }); err != nil {
		return kerr.KafkaStorageError
	}
	return nil
}

// DeleteOffsets drops the state of the group's share-partitions of one
// topic (DeleteShareGroupOffsets); the group must have no members.
func (m *Manager) DeleteOffsets(group string, topic [16]byte) *kerr.Error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g := m.groups[group]; g != nil && len(g.members) > 0 {
		return errNotEmpty
	}
	for _, k := range m.groupKeys(group) {
		if k.Topic != topic {
			continue
		}
		if err := m.cfg.Store.Delete(k); err != nil {
			return kerr.KafkaStorageError
		}
		delete(m.parts, k)
	}
	return nil
}

// DeleteGroup deletes an empty share group and its state (DeleteGroups).
func (m *Manager) DeleteGroup(group string) *kerr.Error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.groups[group]
	if g == nil {
		return kerr.GroupIDNotFound
	}
	if len(g.members) > 0 {
		return errNotEmpty
	}
	for _, k := range m.groupKeys(group) {
		if err := m.cfg.Store.Delete(k); err != nil {
			return kerr.KafkaStorageError
		}
		delete(m.parts, k)
	}
	delete(m.groups, group)
	return nil
}

// nextEpoch is the share session epoch after e: it wraps to 1, as 0 and
// -1 open and close sessions.
func nextEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}
