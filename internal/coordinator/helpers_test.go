package coordinator

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memStore is a Store keeping records per partition; fail makes Append fail.
type memStore struct {
	mu   sync.Mutex // guards recs and fail
	recs map[int32][]Record
	fail error
}

func (s *memStore) Append(p int32, recs []Record) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return -1, s.fail
	}
	if s.recs == nil {
		s.recs = make(map[int32][]Record)
	}
	base := int64(len(s.recs[p]))
	s.recs[p] = append(s.recs[p], recs...)
	return base, nil
}

func (s *memStore) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

// all yields every stored record, partition by partition, as the broker
// replays __consumer_offsets: from one reused buffer, so a coordinator that
// keeps the bytes it is handed without copying them is caught.
func (s *memStore) all(yield func(LogRecord, error) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var scratch []byte
	for _, p := range slices.Sorted(maps.Keys(s.recs)) {
		for i, r := range s.recs[p] {
			scratch = append(append(scratch[:0], r.Key...), r.Value...)
			reused := Record{Key: scratch[:len(r.Key):len(r.Key)]}
			if r.Value != nil {
				reused.Value = scratch[len(r.Key):]
			}
			if !yield(LogRecord{Record: reused, Partition: p, Offset: int64(i), ProducerID: -1}, nil) {
				return
			}
			for i := range scratch {
				scratch[i] = 0xff
			}
		}
	}
}

// harness runs a coordinator inside a synctest bubble.
type harness struct {
	t     testing.TB
	c     *Coordinator
	store *memStore
	stop  func()
}

const (
	testSession   = 10 * time.Second
	testRebalance = 30 * time.Second
)

// start runs a loaded coordinator on store (a fresh one when nil); call
// h.stop before the bubble ends.
func start(t testing.TB, cfg Config, store *memStore) *harness {
	t.Helper()
	if store == nil {
		store = &memStore{}
	}
	c, err := New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Run(ctx)
		close(done)
	}()
	if err := c.Load(context.Background(), store.all); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, c: c, store: store, stop: func() { cancel(); <-done }}
}

func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

// joinReq is a v9 JoinGroup with the named protocols, each subscribing to "t".
func joinReq(group, memberID string, protocols ...string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 9
	req.Group, req.MemberID, req.ProtocolType = group, memberID, "consumer"
	req.SessionTimeoutMillis = int32(testSession.Milliseconds())
	req.RebalanceTimeoutMillis = int32(testRebalance.Milliseconds())
	if len(protocols) == 0 {
		protocols = []string{"range"}
	}
	for _, p := range protocols {
		req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: consumerMeta("t")})
	}
	return req
}

type joinResult struct {
	resp *kmsg.JoinGroupResponse
	err  error
}

// joinAsync sends req on its own goroutine; the result arrives when the
// rebalance completes.
func (h *harness) joinAsync(req *kmsg.JoinGroupRequest) <-chan joinResult {
	ch := make(chan joinResult, 1)
	go func() {
		resp, err := h.c.JoinGroup(context.Background(), "client", "/127.0.0.1", req)
		ch <- joinResult{resp, err}
	}()
	return ch
}

// getID does the KIP-394 first join and returns the member id handed out.
func (h *harness) getID(group string) string {
	h.t.Helper()
	resp := h.join(joinReq(group, ""))
	if resp.ErrorCode != kerr.MemberIDRequired.Code || resp.MemberID == "" {
		h.t.Fatalf("first join: error %d member %q, want MEMBER_ID_REQUIRED with an id", resp.ErrorCode, resp.MemberID)
	}
	return resp.MemberID
}

// join sends req and waits for its answer.
func (h *harness) join(req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	h.t.Helper()
	r := <-h.joinAsync(req)
	if r.err != nil {
		h.t.Fatalf("JoinGroup: %v", r.err)
	}
	return r.resp
}

// recv returns a finished join's response, failing if it is still blocked.
func recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	default:
		var zero T
		t.Fatal("call is still blocked")
		return zero
	}
}

func (h *harness) sync(group, member string, gen int32, assign map[string][]byte) <-chan *kmsg.SyncGroupResponse {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = group, member, gen
	for id, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a})
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	go func() {
		resp, err := h.c.SyncGroup(context.Background(), req)
		if err != nil {
			h.t.Errorf("SyncGroup: %v", err)
		}
		ch <- resp
	}()
	return ch
}

func (h *harness) heartbeat(group, member string, gen int32, instance *string) int16 {
	h.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation, req.InstanceID = group, member, gen, instance
	resp, err := h.c.Heartbeat(context.Background(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.ErrorCode
}

func (h *harness) commit(group, member string, gen int32, offsets map[string]int64) *kmsg.OffsetCommitResponse {
	h.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group, req.MemberID, req.Generation = group, member, gen
	for _, topic := range slices.Sorted(maps.Keys(offsets)) {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Offset = offsets[topic]
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := h.c.CommitOffsets(context.Background(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// committedOffset fetches partition 0 of topic; -1 when none.
func (h *harness) committedOffset(group, topic string) int64 {
	h.t.Helper()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}
	resp, err := h.c.FetchOffsets(context.Background(), rg, false)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].Offset
}

func (h *harness) describe(group string) kmsg.DescribeGroupsResponseGroup {
	h.t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 5
	req.Groups = []string{group}
	resp, err := h.c.DescribeGroups(context.Background(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.Groups[0]
}

// stableGroup forms a group of n members through join and sync; the leader
// assigns each member its own id as assignment. It returns the member ids
// in join order and the generation.
func (h *harness) stableGroup(group string, n int) ([]string, int32) {
	h.t.Helper()
	var ids []string
	var chans []<-chan joinResult
	for range n {
		id := h.getID(group)
		ids = append(ids, id)
		chans = append(chans, h.joinAsync(joinReq(group, id)))
		synctest.Wait()
	}
	var gen int32
	var leader string
	for i, ch := range chans {
		r := <-ch // the initial rebalance delay lets every member in
		if r.err != nil || r.resp.ErrorCode != 0 {
			h.t.Fatalf("join %d: %v %d", i, r.err, r.resp.ErrorCode)
		}
		gen, leader = r.resp.Generation, r.resp.LeaderID
	}
	assign := make(map[string][]byte)
	for _, id := range ids {
		assign[id] = []byte(id)
	}
	var syncs []<-chan *kmsg.SyncGroupResponse
	for _, id := range ids {
		a := assign
		if id != leader {
			a = nil
		}
		syncs = append(syncs, h.sync(group, id, gen, a))
	}
	synctest.Wait()
	for i, ch := range syncs {
		resp := recv(h.t, ch)
		if resp.ErrorCode != 0 || string(resp.MemberAssignment) != ids[i] {
			h.t.Fatalf("sync %d: error %d assignment %q", i, resp.ErrorCode, resp.MemberAssignment)
		}
	}
	return ids, gen
}

var errStore = errors.New("disk on fire")
