package share

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

type memStore struct{ saved map[Key]int64 }

func (s *memStore) Save(k Key, start int64, _ []StateBatch, _ int32) error {
	s.saved[k] = start
	return nil
}
func (s *memStore) Delete(k Key) error { delete(s.saved, k); return nil }

func newTestManager() *Manager {
	return NewManager(Config{Store: &memStore{saved: map[Key]int64{}}, MaxGroupSize: 3, MaxSessions: 10,
		GroupConfig: func(string) GroupConfig {
			return GroupConfig{Limits: lim, HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second}
		}})
}

var topicA = [16]byte{1}

func meta(name string) (TopicInfo, bool) {
	if name == "a" {
		return TopicInfo{ID: topicA, Partitions: 2}, true
	}
	return TopicInfo{}, false
}

func TestHeartbeatSharesPartitions(t *testing.T) {
	m := newTestManager()
	now := time.Unix(1000, 0)
	epochs := map[string]int32{}
	for _, id := range []string{"m1", "m2", "m3"} {
		res, _ := m.Heartbeat(HeartbeatRequest{Group: "g", Member: id, Topics: []string{"a"}}, meta, now)
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		epochs[id] = res.Epoch
	}
	// m1 and m2 catch up with m3's join: three members, two partitions,
	// so one partition is shared.
	count := map[int32]int{}
	for _, id := range []string{"m1", "m2", "m3"} {
		res, _ := m.Heartbeat(HeartbeatRequest{Group: "g", Member: id, Epoch: epochs[id]}, meta, now)
		if res.Err != nil {
			t.Fatalf("%s: %v", id, res.Err)
		}
		assigned := res.Assignment
		if assigned == nil {
			gi, _ := m.Describe("g")
			for _, mem := range gi.Members {
				if mem.ID == id {
					assigned = mem.Assignment
				}
			}
		}
		if len(assigned[topicA]) != 1 {
			t.Fatalf("%s assigned %v, want one partition", id, assigned)
		}
		count[assigned[topicA][0]]++
	}
	if count[0]+count[1] != 3 || count[0] == 0 || count[1] == 0 {
		t.Fatalf("members per partition %v", count)
	}
	if res, _ := m.Heartbeat(HeartbeatRequest{Group: "g", Member: "m4", Topics: []string{"a"}}, meta, now); res.Err != kerr.GroupMaxSizeReached {
		t.Fatalf("4th member of a group of at most 3: %v", res.Err)
	}
}

func TestHeartbeatErrors(t *testing.T) {
	m := newTestManager()
	now := time.Unix(1000, 0)
	if res, _ := m.Heartbeat(HeartbeatRequest{Group: "g", Member: "m1"}, meta, now); res.Err != kerr.InvalidRequest {
		t.Fatalf("join without topics: %v", res.Err)
	}
	res, _ := m.Heartbeat(HeartbeatRequest{Group: "g", Member: "m1", Topics: []string{"a"}}, meta, now)
	if res.Err != nil || res.Epoch != 1 || len(res.Assignment[topicA]) != 2 {
		t.Fatalf("join: %+v", res)
	}
	if res, _ := m.Heartbeat(HeartbeatRequest{Group: "g", Member: "m1", Epoch: 7}, meta, now); res.Err != kerr.FencedMemberEpoch {
		t.Fatalf("wrong epoch: %v", res.Err)
	}
	if res, _ := m.Heartbeat(HeartbeatRequest{Group: "g", Member: "nobody", Epoch: 1}, meta, now); res.Err != kerr.UnknownMemberID {
		t.Fatalf("unknown member: %v", res.Err)
	}
	// The session times out: the member is gone.
	m.Tick(now.Add(11 * time.Second))
	if res, _ := m.Heartbeat(HeartbeatRequest{Group: "g", Member: "m1", Epoch: 1}, meta, now); res.Err != kerr.UnknownMemberID {
		t.Fatalf("expired member: %v", res.Err)
	}
	if gi, _ := m.Describe("g"); gi.State != "Empty" {
		t.Fatalf("state %s", gi.State)
	}
}

func TestShareSessionEpochs(t *testing.T) {
	m := newTestManager()
	tp := TP{Topic: topicA, Partition: 0}
	if _, e := m.FetchSession("g", "m", 1, nil, nil); e != kerr.ShareSessionNotFound {
		t.Fatalf("epoch 1 without session: %v", e)
	}
	if e := m.AckSession("g", "m", 0); e != kerr.InvalidShareSessionEpoch {
		t.Fatalf("ShareAcknowledge with epoch 0: %v", e)
	}
	v, e := m.FetchSession("g", "m", 0, []TP{tp}, nil)
	if e != nil || len(v.Parts) != 1 || !v.Fresh[tp] {
		t.Fatalf("open: %v %+v", e, v)
	}
	if _, e := m.FetchSession("g", "m", 2, nil, nil); e != kerr.InvalidShareSessionEpoch {
		t.Fatalf("skipped epoch: %v", e)
	}
	if v, e := m.FetchSession("g", "m", 1, nil, []TP{tp}); e != nil || len(v.Parts) != 0 {
		t.Fatalf("forget: %v %+v", e, v)
	}
	if e := m.AckSession("g", "m", 2); e != nil {
		t.Fatal(e)
	}
	if e := m.CheckClose("g", "m"); e != nil {
		t.Fatal(e)
	}
	m.CloseSession("g", "m")
	if e := m.CheckClose("g", "m"); e != kerr.ShareSessionNotFound {
		t.Fatalf("closed twice: %v", e)
	}
}

// TestEndedSessionAcquiresNothing: a fetch of a share session still
// running when the session ends (its connection closed, the member opened
// a new one or left) acquires nothing more: its answer may reach no one,
// and records acquired for it would stay locked until their locks expire.
func TestEndedSessionAcquiresNothing(t *testing.T) {
	m := newTestManager()
	now := time.Unix(1000, 0)
	fetch := func(k Key, member string, s *Session) []Range {
		t.Helper()
		got, _, err := m.Acquire(k, Fetch{Member: member, Session: s, HWM: 5, MaxRecords: 5,
			Init: func() int64 { return 0 }, Read: func(int64) (int64, error) { return 5, nil }}, now)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for i, end := range []struct {
		name string
		end  func(member string)
	}{
		{"closed", func(member string) { m.CloseSession("g", member) }},
		{"replaced", func(member string) {
			if _, e := m.FetchSession("g", member, 0, nil, nil); e != nil {
				t.Fatal(e)
			}
		}},
	} {
		// A partition each, of which the session's fetch is the first.
		tp := TP{Topic: topicA, Partition: int32(i)}
		k := Key{Group: "g", Topic: tp.Topic, Partition: tp.Partition}
		member := "m-" + end.name
		v, e := m.FetchSession("g", member, 0, []TP{tp}, nil)
		if e != nil {
			t.Fatal(e)
		}
		end.end(member)
		if got := fetch(k, member, v.Session); len(got) != 0 {
			t.Fatalf("%s session's fetch acquired %+v", end.name, got)
		}
		if got := fetch(k, "other", nil); len(got) != 1 || got[0].First != 0 || got[0].Last != 4 {
			t.Fatalf("after the %s session's fetch another member acquired %+v", end.name, got)
		}
	}
}
