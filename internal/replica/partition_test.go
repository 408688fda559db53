package replica

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
	"github.com/kafkit/kafkit/internal/storage"
)

// fakeController answers AlterPartition as KRaft's controller would for
// one partition, and records the requests.
type fakeController struct {
	mu       sync.Mutex
	requests []*kmsg.AlterPartitionRequest
	answer   func(rp kmsg.AlterPartitionRequestTopicPartition) kmsg.AlterPartitionResponseTopicPartition
}

func (f *fakeController) alter(_ context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	resp := kmsg.NewPtrAlterPartitionResponse()
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionResponseTopic()
		st.Topic, st.TopidID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			st.Partitions = append(st.Partitions, f.answer(rp))
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (f *fakeController) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

// leaderFixture is broker 1 leading a partition of replicas 1, 2, 3 at
// leader epoch 5 and partition epoch 7, with min.insync.replicas minISR.
func leaderFixture(t *testing.T, minISR int, ctl *fakeController) (*Manager, *Partition) {
	t.Helper()
	l, err := storage.Open(storage.NewMemFS(), "/t-0", storage.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	m := NewManager(Config{
		NodeID: 1, LagMax: 10 * time.Second, FetchBackoff: 10 * time.Millisecond,
		MinISR:      func(string) int { return minISR },
		BrokerEpoch: func() int64 { return 100 },
		Send: func(context.Context, int32, kmsg.Request) (kmsg.Response, error) {
			return nil, errors.New("no network")
		},
		AlterPartition: ctl.alter,
	})
	t.Cleanup(m.Close)
	m.SetBrokers(map[int32]Broker{1: {Epoch: 100}, 2: {Epoch: 200}, 3: {Epoch: 300}})
	p := m.NewPartition("t", 0, [16]byte{1}, l, 0, func() {})
	m.Apply(p, State{Leader: 1, LeaderEpoch: 5, PartitionEpoch: 7, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}})
	return m, p
}

func appendRecords(t *testing.T, p *Partition, acks int16, n int) error {
	t.Helper()
	bl := recordbatch.NewBuilder(recordbatch.Options{}, 0)
	for range n {
		bl.Append(time.Now().UnixMilli(), nil, []byte("v"), nil)
	}
	batch, err := bl.Finish(recordbatch.NoProducer())
	if err != nil {
		t.Fatal(err)
	}
	return p.AppendAsLeader(acks, func(epoch int32) error {
		_, err := p.Log.Append(batch, time.Now(), epoch)
		return err
	})
}

// readForFollower is ReadForFollower copying the records, as the broker
// does when it cannot send a file chunk.
func readForFollower(p *Partition, f FollowerFetch) (FetchResult, []byte, error) {
	var records []byte
	res, err := p.ReadForFollower(f, func() (err error) {
		records, err = p.Log.ReadReplica(f.FetchOffset, 1<<20, true, nil)
		return err
	})
	return res, records, err
}

func fetchAt(t *testing.T, p *Partition, replica int32, epoch int64, offset int64) FetchResult {
	t.Helper()
	res, _, err := readForFollower(p, FollowerFetch{Replica: replica, BrokerEpoch: epoch, CurrentLeaderEpoch: 5, LastFetchedEpoch: -1, FetchOffset: offset})
	if err != nil {
		t.Fatalf("fetch of %d at %d: %v", replica, offset, err)
	}
	return res
}

// The high watermark is the smallest log end offset of the ISR, moves
// only forward, and not while the ISR is below min.insync.replicas.
func TestHighWatermark(t *testing.T) {
	ctl := &fakeController{answer: func(rp kmsg.AlterPartitionRequestTopicPartition) kmsg.AlterPartitionResponseTopicPartition {
		return kmsg.AlterPartitionResponseTopicPartition{Partition: rp.Partition, ErrorCode: kerr.InvalidUpdateVersion.Code}
	}}
	_, p := leaderFixture(t, 2, ctl)
	if err := appendRecords(t, p, -1, 10); err != nil {
		t.Fatal(err)
	}
	if hw := p.Log.HighWatermark(); hw != 0 {
		t.Fatalf("high watermark %d before any follower fetched, want 0", hw)
	}
	fetchAt(t, p, 2, 200, 10)
	if hw := p.Log.HighWatermark(); hw != 0 {
		t.Fatalf("high watermark %d with follower 3 unknown, want 0", hw)
	}
	fetchAt(t, p, 3, 300, 4)
	if hw := p.Log.HighWatermark(); hw != 4 {
		t.Fatalf("high watermark %d, want 4 (follower 3's end)", hw)
	}
	// An acks=all wait completes on the fetch that moves the high
	// watermark past it, before that fetch returns (no goroutine).
	var fired []error
	p.AwaitAcks(10, func(err error) { fired = append(fired, err) })
	if len(fired) != 0 {
		t.Fatal("acks=all done below the high watermark")
	}
	if res := fetchAt(t, p, 3, 300, 10); res.HighWatermark != 10 {
		t.Fatalf("the fetch that completes the ISR answers high watermark %d, want 10", res.HighWatermark)
	}
	if len(fired) != 1 || fired[0] != nil {
		t.Fatalf("acks=all at the high watermark: %v", fired)
	}
	// A follower's position going back (a new run of it) never takes the
	// high watermark back.
	fetchAt(t, p, 2, 200, 3)
	if hw := p.Log.HighWatermark(); hw != 10 {
		t.Fatalf("high watermark went back to %d", hw)
	}
	// With the ISR at the leader only (below min.insync.replicas 2),
	// acks=all is refused before appending and acks=1 does not move the
	// high watermark.
	p.m.Apply(p, State{Leader: 1, LeaderEpoch: 5, PartitionEpoch: 8, Replicas: []int32{1, 2, 3}, ISR: []int32{1}})
	// An acks=all produce the high watermark passed while the ISR shrank
	// below min: NOT_ENOUGH_REPLICAS_AFTER_APPEND (Kafka's
	// checkEnoughReplicasReachOffset).
	fired = nil
	p.AwaitAcks(10, func(err error) { fired = append(fired, err) })
	if len(fired) != 1 || !errors.Is(fired[0], kerr.NotEnoughReplicasAfterAppend) {
		t.Fatalf("acks=all after the ISR shrank below min: %v", fired)
	}
	if err := appendRecords(t, p, -1, 1); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with the ISR below min: %v", err)
	}
	if end := p.Log.EndOffset(); end != 10 {
		t.Fatalf("NOT_ENOUGH_REPLICAS appended: end %d", end)
	}
	if err := appendRecords(t, p, 1, 1); err != nil {
		t.Fatal(err)
	}
	if hw := p.Log.HighWatermark(); hw != 10 {
		t.Fatalf("high watermark %d moved with the ISR below min.insync.replicas", hw)
	}
}

// An acks=all wait ends exactly once: withdrawn (its request timed out),
// it never runs; when the leadership goes, it fails with
// NOT_LEADER_OR_FOLLOWER at once.
func TestAwaitAcksCancelAndLeadershipLoss(t *testing.T) {
	_, p := leaderFixture(t, 1, &fakeController{})
	if err := appendRecords(t, p, -1, 5); err != nil {
		t.Fatal(err)
	}
	var fired []error
	w := p.AwaitAcks(5, func(err error) { fired = append(fired, err) })
	if !p.CancelAwait(w) || p.CancelAwait(w) {
		t.Fatal("CancelAwait: want true for a waiting write, then false")
	}
	fetchAt(t, p, 2, 200, 5)
	fetchAt(t, p, 3, 300, 5)
	if hw := p.Log.HighWatermark(); hw != 5 || len(fired) != 0 {
		t.Fatalf("high watermark %d, withdrawn wait ran %d times", hw, len(fired))
	}
	if err := appendRecords(t, p, -1, 1); err != nil {
		t.Fatal(err)
	}
	w = p.AwaitAcks(6, func(err error) { fired = append(fired, err) })
	p.m.Apply(p, State{Leader: 2, LeaderEpoch: 6, PartitionEpoch: 9, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}})
	if len(fired) != 1 || !errors.Is(fired[0], kerr.NotLeaderForPartition) {
		t.Fatalf("acks=all when the leadership went: %v", fired)
	}
	if p.CancelAwait(w) {
		t.Fatal("CancelAwait of a completed wait: want false")
	}
}

// A follower's fetch is checked as Kafka's leader checks it.
func TestFollowerFetchChecks(t *testing.T) {
	_, p := leaderFixture(t, 1, &fakeController{})
	if err := appendRecords(t, p, 1, 3); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		f    FollowerFetch
		want error
	}{
		{"older leader epoch", FollowerFetch{Replica: 2, BrokerEpoch: 200, CurrentLeaderEpoch: 4, LastFetchedEpoch: -1}, kerr.FencedLeaderEpoch},
		{"newer leader epoch", FollowerFetch{Replica: 2, BrokerEpoch: 200, CurrentLeaderEpoch: 6, LastFetchedEpoch: -1}, kerr.UnknownLeaderEpoch},
		{"not a replica, with an epoch", FollowerFetch{Replica: 9, BrokerEpoch: -1, CurrentLeaderEpoch: 5, LastFetchedEpoch: -1}, kerr.UnknownLeaderEpoch},
		{"not a replica, without one", FollowerFetch{Replica: 9, BrokerEpoch: -1, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1}, kerr.NotLeaderForPartition},
		{"an older run of the follower", FollowerFetch{Replica: 2, BrokerEpoch: 199, CurrentLeaderEpoch: 5, LastFetchedEpoch: -1}, kerr.NotLeaderForPartition},
		{"past the end", FollowerFetch{Replica: 2, BrokerEpoch: 200, CurrentLeaderEpoch: 5, LastFetchedEpoch: -1, FetchOffset: 4}, storage.ErrOffsetOutOfRange},
	} {
		if _, _, err := readForFollower(p, c.f); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Diverging: the follower's last epoch 3 is not in the leader's log,
	// whose records are all of epoch 5, written from 0.
	res, records, err := readForFollower(p, FollowerFetch{Replica: 2, BrokerEpoch: 200, CurrentLeaderEpoch: 5, LastFetchedEpoch: 3, FetchOffset: 7})
	if err != nil {
		t.Fatal(err)
	}
	if res.Diverging.Epoch != 3 || res.Diverging.EndOffset != 0 || len(records) != 0 {
		t.Fatalf("diverging epoch %d end %d with %d bytes, want 3, 0 and no records", res.Diverging.Epoch, res.Diverging.EndOffset, len(records))
	}
	res, records, err = readForFollower(p, FollowerFetch{Replica: 2, BrokerEpoch: 200, CurrentLeaderEpoch: 5, LastFetchedEpoch: 5, FetchOffset: 1})
	if err != nil || res.Diverging.EndOffset != -1 || len(records) == 0 {
		t.Fatalf("a fetch within the leader's epoch: %v, diverging %d, %d bytes", err, res.Diverging.EndOffset, len(records))
	}
}

// ISR changes go to the controller with the leader and partition epochs
// and the new members' broker epochs; a committed answer is taken at
// once, a refused one dropped (KIP-497).
func TestISRChanges(t *testing.T) {
	var committed []int32
	ctl := &fakeController{}
	ctl.answer = func(rp kmsg.AlterPartitionRequestTopicPartition) kmsg.AlterPartitionResponseTopicPartition {
		if rp.LeaderEpoch != 5 || rp.PartitionEpoch != 7 {
			return kmsg.AlterPartitionResponseTopicPartition{Partition: rp.Partition, ErrorCode: kerr.InvalidUpdateVersion.Code}
		}
		committed = slices.Clone(rp.NewISR)
		return kmsg.AlterPartitionResponseTopicPartition{Partition: rp.Partition, LeaderID: 1, LeaderEpoch: 5, PartitionEpoch: 8, ISR: rp.NewISR}
	}
	_, p := leaderFixture(t, 1, ctl)
	if err := appendRecords(t, p, 1, 5); err != nil {
		t.Fatal(err)
	}
	fetchAt(t, p, 2, 200, 5)
	fetchAt(t, p, 3, 300, 2)
	// Follower 3 stopped short of the end 11 s ago: out.
	p.mu.Lock()
	p.followers[3].lastCaughtUp = time.Now().Add(-11 * time.Second)
	p.mu.Unlock()
	p.maybeShrink(time.Now())
	waitFor(t, "the shrink committed", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return slices.Equal(p.state.ISR, []int32{1, 2}) })
	if !slices.Equal(committed, []int32{1, 2}) {
		t.Fatalf("proposed ISR %v", committed)
	}
	if hw := p.Log.HighWatermark(); hw != 5 {
		t.Fatalf("high watermark %d once 3 left, want 5", hw)
	}
	// 3 catches up to the high watermark: it is proposed back, with its
	// broker epoch; the controller (at partition epoch 8 now, while this
	// fake still wants 7) refuses, and the proposal is dropped.
	fetchAt(t, p, 3, 300, 5)
	waitFor(t, "the refused expansion dropped", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return ctl.count() == 2 && p.proposed == nil })
	req := ctl.requests[1]
	got := req.Topics[0].Partitions[0]
	if req.BrokerID != 1 || req.BrokerEpoch != 100 || got.PartitionEpoch != 8 || len(got.NewEpochISR) != 3 || got.NewEpochISR[2].BrokerID != 3 || got.NewEpochISR[2].BrokerEpoch != 300 {
		t.Fatalf("expansion request %+v", req)
	}
	p.mu.Lock()
	isr := slices.Clone(p.state.ISR)
	p.mu.Unlock()
	if !slices.Equal(isr, []int32{1, 2}) {
		t.Fatalf("ISR %v after a refused expansion", isr)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("no %s within 5 s", what)
}

// A follower truncates where the leader says its log diverged, as Kafka's
// getOffsetTruncationState: to the end of the leader's epoch when it has
// that epoch, else to the end of its own largest epoch below it.
func TestFollowerTruncation(t *testing.T) {
	for _, c := range []struct {
		name     string
		divEpoch int32
		divEnd   int64
		want     int64
	}{
		{"same epoch, shorter on the leader", 0, 3, 3},
		{"an epoch the follower lacks", 1, 7, 5},
		{"the follower's epoch, longer on the leader", 2, 20, 10},
		{"no epoch: the leader's end", -1, 6, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, p := leaderFixture(t, 1, &fakeController{})
			// Records 0-4 of epoch 0 and 5-9 of epoch 2, copied from a leader.
			for i, epoch := range []int32{0, 0, 0, 0, 0, 2, 2, 2, 2, 2} {
				bl := recordbatch.NewBuilder(recordbatch.Options{}, 0)
				bl.Append(time.Now().UnixMilli(), nil, []byte("v"), nil)
				batch, err := bl.Finish(recordbatch.NoProducer())
				if err != nil {
					t.Fatal(err)
				}
				recordbatch.SetBaseOffset(batch, int64(i))
				recordbatch.SetPartitionLeaderEpoch(batch, epoch)
				m.Apply(p, State{Leader: 2, LeaderEpoch: 6, PartitionEpoch: 9, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}})
				if err := p.appendFromLeader(2, 6, batch, 0, 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.truncateDiverging(2, 6, c.divEpoch, c.divEnd); err != nil {
				t.Fatal(err)
			}
			if end := p.Log.EndOffset(); end != c.want {
				t.Fatalf("truncated to %d, want %d", end, c.want)
			}
			// An answer for an older leadership is dropped.
			if err := p.truncateDiverging(2, 5, 0, 0); !errors.Is(err, errStale) {
				t.Fatalf("stale answer: %v", err)
			}
		})
	}
}

// A follower that led an epoch without writing to it (its epoch cache has
// that epoch at its log end, assigned on becoming leader) and is told by
// the new leader, which never saw the epoch, that it diverged at its own
// log end drops that entry, as Kafka's UnifiedLog.truncateTo does when the
// offset is not below the end. Kept, the follower's next fetch named the
// same last epoch, the leader answered the same divergence at once, and
// the fetcher looped without backoff (a follower never back in the ISR,
// two brokers at full CPU, in sarama's functional tests after a restart).
func TestFollowerDivergedAtItsEndDropsEmptyEpoch(t *testing.T) {
	m, p := leaderFixture(t, 1, &fakeController{})
	m.Apply(p, State{Leader: 2, LeaderEpoch: 6, PartitionEpoch: 8, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}})
	for i := range 5 {
		bl := recordbatch.NewBuilder(recordbatch.Options{}, 0)
		bl.Append(time.Now().UnixMilli(), nil, []byte("v"), nil)
		batch, err := bl.Finish(recordbatch.NoProducer())
		if err != nil {
			t.Fatal(err)
		}
		recordbatch.SetBaseOffset(batch, int64(i))
		recordbatch.SetPartitionLeaderEpoch(batch, 6)
		if err := p.appendFromLeader(2, 6, batch, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Led epoch 7 without a record, then follows node 2 in epoch 8.
	m.Apply(p, State{Leader: 1, LeaderEpoch: 7, PartitionEpoch: 9, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}})
	m.Apply(p, State{Leader: 2, LeaderEpoch: 8, PartitionEpoch: 10, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}})
	if e := p.Log.LatestEpoch(); e != 7 {
		t.Fatalf("latest epoch %d after leading epoch 7, want 7", e)
	}
	// Node 2 knows epochs up to 6, which ends at 5: the follower's end.
	if err := p.truncateDiverging(2, 8, 6, 5); err != nil {
		t.Fatal(err)
	}
	if e, end := p.Log.LatestEpoch(), p.Log.EndOffset(); e != 6 || end != 5 {
		t.Fatalf("latest epoch %d, end %d; want epoch 6 (7 had no records), end 5", e, end)
	}
}
