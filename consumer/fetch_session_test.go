package consumer

// Issue 16: KIP-227 incremental fetch sessions, as Java's
// FetchSessionHandler.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
)

func named(req *kmsg.FetchRequest) (parts, forgotten int) {
	for _, t := range req.Topics {
		parts += len(t.Partitions)
	}
	for _, t := range req.ForgottenTopics {
		forgotten += len(t.Partitions)
	}
	return parts, forgotten
}

func TestFetchSessionRequests(t *testing.T) {
	tp := func(p int32) kafkit.TopicPartition { return kafkit.TopicPartition{Topic: "t", Partition: p} }
	want := func(offsets ...int64) []wantPart {
		var w []wantPart
		for p, off := range offsets {
			w = append(w, wantPart{tp(int32(p)), sessionPart{fetchOffset: off, leaderEpoch: 1, maxBytes: 100}})
		}
		return w
	}
	var s fetchSession
	step := func(w []wantPart, resp *kmsg.FetchResponse, err error, wantID, wantEpoch int32, wantParts, wantForgotten int) {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		s.fill(req, w)
		if parts, forgotten := named(req); req.SessionID != wantID || req.SessionEpoch != wantEpoch || parts != wantParts || forgotten != wantForgotten {
			t.Fatalf("session %d epoch %d naming %d partitions, forgetting %d; want %d, %d, %d, %d",
				req.SessionID, req.SessionEpoch, parts, forgotten, wantID, wantEpoch, wantParts, wantForgotten)
		}
		s.handle(resp, err)
	}
	ok := func(id int32) *kmsg.FetchResponse {
		r := kmsg.NewPtrFetchResponse()
		r.SessionID = id
		return r
	}
	step(want(0, 0, 0), ok(7), nil, 0, 0, 3, 0)   // full: opens session 7
	step(want(5, 0, 0), ok(7), nil, 7, 1, 1, 0)   // only the partition that moved
	step(want(5, 0, 0), ok(7), nil, 7, 2, 0, 0)   // nothing changed: names nothing
	step(want(5, 0), ok(7), nil, 7, 3, 0, 1)      // partition 2 is no longer wanted
	step(want(5, 0, 3), nil, errTest, 7, 4, 1, 0) // the Fetch fails...
	step(want(5, 0, 3), ok(9), nil, 7, 0, 3, 0)   // ...so the next is full, closing 7
	session := ok(9)
	session.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
	step(want(6, 0, 3), session, nil, 9, 1, 1, 0)
	step(want(6, 0, 3), ok(0), nil, 9, 0, 3, 0) // full again; the broker keeps no session
	step(want(6, 0, 3), ok(0), nil, 0, 0, 3, 0) // so every Fetch is full
	s.id, s.epoch = 3, 1<<31-1
	step(want(6, 0, 3), ok(3), nil, 3, 1<<31-1, 0, 0)
	if s.epoch != 1 {
		t.Fatalf("epoch after MaxInt32: %d, want 1", s.epoch)
	}
}

type testError struct{}

func (testError) Error() string { return "test" }

var errTest = testError{}

// Against kfake: the consumer opens a session, then idle fetches name no
// partition; after a session error the session's connection sends a full
// Fetch, and records keep coming without a back-off.
func TestFetchSessionIncremental(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(8, "t"))
	produce(t, c, spread("t", 8, 0, 80)...)
	var mu sync.Mutex
	var fetches []*kmsg.FetchRequest
	failNext := false
	var failed int32 // the session whose Fetch failed
	var failedAt int // that Fetch, in fetches
	c.ControlKey(kmsg.Fetch.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.FetchRequest)
		mu.Lock()
		defer mu.Unlock()
		fetches = append(fetches, req)
		if failNext && req.SessionEpoch > 0 {
			failNext, failed, failedAt = false, req.SessionID, len(fetches)-1
			resp := req.ResponseKind().(*kmsg.FetchResponse)
			resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
			return resp, nil, true
		}
		return nil, nil, false
	})
	cons := newConsumer(t, c, func(cfg *Config) { cfg.AutoOffsetReset = OffsetResetEarliest })
	var tps []kafkit.TopicPartition
	for p := range int32(8) {
		tps = append(tps, kafkit.TopicPartition{Topic: "t", Partition: p})
	}
	if err := cons.Assign(tps...); err != nil {
		t.Fatal(err)
	}
	pollN(t, testCtx(t, 10*time.Second), cons, 80)
	time.Sleep(500 * time.Millisecond) // fetch.max.wait.ms is 100: idle Fetches

	mu.Lock()
	// A session per fetch connection: a backlog's partitions are spread
	// over both.
	sessions := make(map[int32]bool)
	idle := 0
	for i, req := range fetches {
		parts, _ := named(req)
		if i == 0 && req.SessionEpoch != 0 {
			t.Fatalf("first Fetch: epoch %d, want 0 (a full Fetch opening a session)", req.SessionEpoch)
		}
		if req.SessionEpoch > 0 {
			sessions[req.SessionID] = true
			if parts == 0 {
				idle++
			}
		}
	}
	if len(sessions) == 0 || len(sessions) > client.FetchConns || idle < 2 {
		t.Fatalf("%d Fetches, sessions %v, %d naming no partition; want incremental idle Fetches on at most %d sessions", len(fetches), sessions, idle, client.FetchConns)
	}
	failNext, failed, fetches = true, 0, nil
	mu.Unlock()

	time.Sleep(300 * time.Millisecond)
	produce(t, c, spread("t", 8, 80, 8)...)
	pollN(t, testCtx(t, 10*time.Second), cons, 8)
	mu.Lock()
	defer mu.Unlock()
	if failed == 0 {
		t.Fatal("no incremental Fetch failed")
	}
	for _, req := range fetches[failedAt+1:] {
		if req.SessionID == failed && req.SessionEpoch > 0 {
			t.Fatalf("incremental Fetch (epoch %d) on session %d after FETCH_SESSION_ID_NOT_FOUND", req.SessionEpoch, failed)
		}
	}
	// The failed session's connection, once used again, sends a full
	// Fetch closing it.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		for _, req := range fetches {
			if req.SessionEpoch == 0 && req.SessionID == failed {
				if parts, _ := named(req); parts == 0 {
					t.Fatalf("full Fetch closing %d names no partition", failed)
				}
				return
			}
		}
		mu.Unlock()
		produce(t, c, spread("t", 8, 88, 8)...)
		pollN(t, testCtx(t, 10*time.Second), cons, 8)
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
	}
	t.Fatal("no full Fetch after FETCH_SESSION_ID_NOT_FOUND")
}

// Close asks the broker to close the fetch session (a Fetch with its id and
// epoch -1 naming no partition, as Java's consumer and kgo send), and does
// not wait meanwhile for the Fetch long-polling on the session's
// connection.
func TestFetchSessionClosedOnClose(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	produce(t, c, spread("t", 2, 0, 10)...)
	var mu sync.Mutex
	var fetches []*kmsg.FetchRequest
	c.ControlKey(kmsg.Fetch.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		fetches = append(fetches, r.(*kmsg.FetchRequest))
		mu.Unlock()
		return nil, nil, false
	})
	const maxWait = 5 * time.Second
	cons := newConsumer(t, c, func(cfg *Config) {
		cfg.AutoOffsetReset = OffsetResetEarliest
		cfg.FetchMaxWait = maxWait
	})
	if err := cons.Assign(kafkit.TopicPartition{Topic: "t", Partition: 0}, kafkit.TopicPartition{Topic: "t", Partition: 1}); err != nil {
		t.Fatal(err)
	}
	pollN(t, testCtx(t, 10*time.Second), cons, 10)
	// Wait for an incremental Fetch: a session is open, and the broker
	// holds that Fetch (there is nothing more to read) for maxWait.
	open := func() map[int32]bool {
		mu.Lock()
		defer mu.Unlock()
		ids := make(map[int32]bool)
		for _, req := range fetches {
			if req.SessionEpoch > 0 {
				ids[req.SessionID] = true
			}
		}
		return ids
	}
	for deadline := time.Now().Add(5 * time.Second); len(open()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no incremental Fetch in 5 s")
		}
	}
	ids := open()

	start := time.Now()
	if err := cons.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= maxWait/2 {
		t.Fatalf("Close took %v: it waited for the long poll", took)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, req := range fetches {
		if req.SessionEpoch == -1 {
			if parts, forgotten := named(req); parts != 0 || forgotten != 0 {
				t.Fatalf("final Fetch: session %d naming %d partitions, forgetting %d; want none", req.SessionID, parts, forgotten)
			}
			delete(ids, req.SessionID)
		}
	}
	if len(ids) > 0 {
		t.Fatalf("no Fetch closed sessions %v (epoch -1) on Close", ids)
	}
}
