package share

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// epochStore records what a share coordinator's Store was last given.
type epochStore struct {
	start map[Key]int64
	epoch map[Key]int32
	fail  error
}

func (s *epochStore) Save(k Key, start int64, _ []StateBatch, leaderEpoch int32) error {
	if s.fail != nil {
		return s.fail
	}
	s.start[k], s.epoch[k] = start, leaderEpoch
	return nil
}

func (s *epochStore) Delete(k Key) error { delete(s.start, k); return nil }

func newCoordinator() (*Manager, *epochStore) {
	st := &epochStore{start: map[Key]int64{}, epoch: map[Key]int32{}}
	return NewManager(Config{Store: st, MaxGroupSize: 3, MaxSessions: 10,
		GroupConfig: func(string) GroupConfig { return GroupConfig{Limits: lim} }}), st
}

// The share coordinator fences a deposed leader: once a leader at a newer
// epoch read a share-partition's state (the newer epoch is saved first),
// writes and reads at the older epoch get FENCED_LEADER_EPOCH and change
// nothing.
func TestCoordinatorFencesOlderLeaders(t *testing.T) {
	m, st := newCoordinator()
	k := Key{Group: "g", Topic: topicA}
	if l, e := m.ReadState(k, 3); e != nil || l.Found {
		t.Fatalf("read of a key without state: %+v %v", l, e)
	}
	if e := m.WriteState(k, 3, 10, []StateBatch{{First: 12, Last: 13, State: Acknowledged, DeliveryCount: 1}}); e != nil {
		t.Fatal(e)
	}
	if !m.IsGroup("g") || st.start[k] != 10 || st.epoch[k] != 3 {
		t.Fatalf("after the first write: group %v, saved %d at epoch %d", m.IsGroup("g"), st.start[k], st.epoch[k])
	}
	l, e := m.ReadState(k, 4)
	if e != nil || !l.Found || l.Start != 10 || len(l.Batches) != 1 || l.Batches[0].First != 12 || st.epoch[k] != 4 {
		t.Fatalf("read by the next leader: %+v %v, saved epoch %d", l, e, st.epoch[k])
	}
	if e := m.WriteState(k, 3, 20, nil); e != kerr.FencedLeaderEpoch || st.start[k] != 10 {
		t.Fatalf("write of the deposed leader: %v, saved start %d", e, st.start[k])
	}
	if _, e := m.ReadState(k, 3); e != kerr.FencedLeaderEpoch {
		t.Fatalf("read of the deposed leader: %v", e)
	}
	if e := m.WriteState(k, 4, 14, nil); e != nil {
		t.Fatal(e)
	}
	if po := m.Offsets("g"); len(po) != 1 || po[0].Start != 14 {
		t.Fatalf("offsets after the new leader's write: %+v", po)
	}
	// A write the store refuses leaves the state as it was.
	st.fail = errors.New("disk full")
	if e := m.WriteState(k, 5, 30, nil); e != kerr.KafkaStorageError {
		t.Fatalf("failed write: %v", e)
	}
	if l, _ := m.ReadState(k, 4); l.Start != 14 {
		t.Fatalf("state after a failed write: %+v", l)
	}
}

// A leader's Manager reads a share-partition's state through Read when it
// first serves it, saves at the epoch it read it at, and initializes it
// only when there is none; DropParts forgets it so that it is read again.
func TestLeaderReadsStateOnFirstUse(t *testing.T) {
	coord, _ := newCoordinator()
	k := Key{Group: "g", Topic: topicA}
	if e := coord.WriteState(k, 1, 5, []StateBatch{{First: 5, Last: 6, State: Acknowledged, DeliveryCount: 1}, {First: 7, Last: 7, State: Available, DeliveryCount: 1}}); e != nil {
		t.Fatal(e)
	}
	epoch, reads := int32(2), 0
	var leader *Manager
	leader = NewManager(Config{GroupConfig: func(string) GroupConfig { return GroupConfig{Limits: lim} }, MaxSessions: 10,
		Store: storeFunc(func(k Key, start int64, b []StateBatch, e int32) error {
			if ke := coord.WriteState(k, e, start, b); ke != nil {
				return ke
			}
			return nil
		}),
		Read: func(k Key) (Loaded, error) {
			reads++
			l, e := coord.ReadState(k, epoch)
			if e != nil {
				return l, e
			}
			return l, nil
		}})
	now := time.Unix(100, 0)
	read := func(from int64) (int64, error) { return 20, nil }
	ranges, _, err := leader.Acquire(k, Fetch{Member: "m", HWM: 20, MaxRecords: 100, Init: func() int64 { t.Fatal("initialized a partition with state"); return 0 }, Read: read}, now)
	if err != nil || len(ranges) != 2 || ranges[0] != (Range{First: 7, Last: 7, DeliveryCount: 2}) || ranges[1].First != 8 || reads != 1 {
		t.Fatalf("acquired %+v, %v after %d reads", ranges, err, reads)
	}
	// lim.MaxLocks (10) bounds the window: 7-16 were acquired.
	if e := leader.Acknowledge(k, "m", []AckBatch{{First: 7, Last: 16, Types: []AckType{AckAccept}}}, now); e != nil {
		t.Fatal(e)
	}
	if po := coord.Offsets("g"); po[0].Start != 17 {
		t.Fatalf("coordinator's SPSO after the acknowledgement: %+v", po)
	}
	// A newer leader reads the state: the older one's writes are fenced.
	epoch = 3
	newer := NewManager(leader.cfg)
	if _, _, err := newer.Acquire(k, Fetch{Member: "n", HWM: 20, MaxRecords: 1, Read: read}, now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := leader.Acquire(k, Fetch{Member: "m", HWM: 30, MaxRecords: 5, Read: func(int64) (int64, error) { return 30, nil }}, now); err != nil {
		t.Fatal(err)
	}
	if e := leader.Acknowledge(k, "m", []AckBatch{{First: 17, Last: 21, Types: []AckType{AckAccept}}}, now); e != kerr.FencedLeaderEpoch {
		t.Fatalf("deposed leader's acknowledgement: %v", e)
	}
	// Dropped, the state is read again at first use.
	leader.DropParts(func(Key, int32) bool { return true })
	if _, _, err := leader.Acquire(k, Fetch{Member: "m", HWM: 20, MaxRecords: 1, Read: read}, now); err != nil || reads != 3 {
		t.Fatalf("after the drop: %v, %d reads", err, reads)
	}
	// No state at all: Init decides the start, saved at the read epoch.
	k2 := Key{Group: "g", Topic: topicA, Partition: 1}
	if _, _, err := leader.Acquire(k2, Fetch{Member: "m", HWM: 50, MaxRecords: 1, Init: func() int64 { return 40 }, Read: func(int64) (int64, error) { return 41, nil }}, now); err != nil {
		t.Fatal(err)
	}
	if l, e := coord.ReadState(k2, 3); e != nil || !l.Found || l.Start != 40 {
		t.Fatalf("initialized state at the coordinator: %+v %v", l, e)
	}
}

type storeFunc func(k Key, start int64, b []StateBatch, epoch int32) error

func (f storeFunc) Save(k Key, start int64, b []StateBatch, epoch int32) error {
	return f(k, start, b, epoch)
}
func (f storeFunc) Delete(Key) error { return nil }

// DropGroups forgets a coordinator's groups with their state.
func TestCoordinatorDropGroups(t *testing.T) {
	m, _ := newCoordinator()
	for _, g := range []string{"a", "b"} {
		if e := m.WriteState(Key{Group: g, Topic: topicA}, 0, 1, nil); e != nil {
			t.Fatal(e)
		}
	}
	m.DropGroups(func(g string) bool { return g == "a" })
	if m.IsGroup("a") || !m.IsGroup("b") || len(m.Offsets("a")) != 0 || len(m.Offsets("b")) != 1 {
		t.Fatalf("after dropping a: groups %+v", m.Groups())
	}
}

// A leader forgets a share-partition no share session uses any more, so
// that an offsets change at the coordinator (on a group without members)
// is what the next consumer starts from.
func TestLeaderEvictsIdlePartitions(t *testing.T) {
	coord, _ := newCoordinator()
	k := Key{Group: "g", Topic: topicA}
	reads := 0
	leader := NewManager(Config{GroupConfig: func(string) GroupConfig { return GroupConfig{Limits: lim} }, MaxSessions: 10,
		Store: storeFunc(func(k Key, start int64, b []StateBatch, e int32) error {
			if ke := coord.WriteState(k, e, start, b); ke != nil {
				return ke
			}
			return nil
		}),
		Read: func(k Key) (Loaded, error) {
			reads++
			l, e := coord.ReadState(k, 1)
			if e != nil {
				return l, e
			}
			return l, nil
		}})
	now := time.Unix(100, 0)
	tp := TP{Topic: topicA}
	fetch := func(member string) []Range {
		t.Helper()
		if _, e := leader.FetchSession("g", member, 0, []TP{tp}, nil); e != nil {
			t.Fatal(e)
		}
		r, _, err := leader.Acquire(k, Fetch{Member: member, HWM: 100, MaxRecords: 3, Init: func() int64 { return 0 }, Read: func(int64) (int64, error) { return 100, nil }}, now)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	fetch("m1")
	fetch("m2")
	leader.CloseSession("g", "m1")
	if reads != 1 {
		t.Fatalf("%d reads while m2's session uses the partition", reads)
	}
	leader.CloseSession("g", "m2")
	if e := coord.AlterOffsets(k, 50); e != nil {
		t.Fatal(e)
	}
	if r := fetch("m3"); reads != 2 || len(r) != 1 || r[0].First != 50 {
		t.Fatalf("after the sessions closed and the SPSO moved to 50: acquired %+v after %d reads", r, reads)
	}
}

// A cluster leader applies a change at once and writes it behind: a fetch
// of the partition is not held up by a write in flight, and the changes
// made meanwhile go in one next write; an acknowledgement returns once a
// write holding it is durable.
func TestLeaderWritesBehind(t *testing.T) {
	k := Key{Group: "g", Topic: topicA}
	release := make(chan struct{})
	saves := make(chan int64, 10)
	block := false
	leader := NewManager(Config{GroupConfig: func(string) GroupConfig { return GroupConfig{Limits: lim} }, MaxSessions: 10,
		Store: storeFunc(func(_ Key, start int64, _ []StateBatch, _ int32) error {
			if block {
				<-release
			}
			saves <- start
			return nil
		}),
		Read: func(Key) (Loaded, error) { return Loaded{}, nil }})
	now := time.Unix(100, 0)
	read := func(int64) (int64, error) { return 100, nil }
	if _, _, err := leader.Acquire(k, Fetch{Member: "m", HWM: 100, MaxRecords: 6, Init: func() int64 { return 0 }, Read: read}, now); err != nil {
		t.Fatal(err)
	}
	<-saves // the initial state
	block = true
	acked := make(chan *kerr.Error, 3)
	go func() { acked <- leader.Acknowledge(k, "m", accept(0, 1), now) }()
	for !writing(leader, k) {
		time.Sleep(time.Millisecond)
	}
	// Write 1 (0-1) is in flight: a fetch goes on, two more acknowledgements wait.
	if r, _, err := leader.Acquire(k, Fetch{Member: "m", HWM: 100, MaxRecords: 2, Read: read}, now); err != nil || len(r) != 1 || r[0].First != 6 {
		t.Fatalf("fetch during a write: %+v %v", r, err)
	}
	go func() { acked <- leader.Acknowledge(k, "m", accept(2, 3), now) }()
	go func() { acked <- leader.Acknowledge(k, "m", accept(4, 5), now) }()
	for version(leader, k) < 3 {
		time.Sleep(time.Millisecond)
	}
	select {
	case e := <-acked:
		t.Fatalf("an acknowledgement returned before its write: %v", e)
	default:
	}
	close(release)
	for range 3 {
		if e := <-acked; e != nil {
			t.Fatal(e)
		}
	}
	if first, second := <-saves, <-saves; first != 2 || second != 6 || len(saves) != 0 {
		t.Fatalf("writes of SPSO %d and %d, %d more: want 2 then 6 in one", first, second, len(saves))
	}
}

func writing(m *Manager, k Key) bool {
	m.mu.Lock()
	sp := m.parts[k]
	m.mu.Unlock()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.w.writing
}

func version(m *Manager, k Key) uint64 {
	m.mu.Lock()
	sp := m.parts[k]
	m.mu.Unlock()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.w.version
}
