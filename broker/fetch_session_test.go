package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessionFetch sends a Fetch at version v for the given partitions of topic
// (name below v13, id from v13) on the session id/epoch, without waiting.
func sessionFetch(c *rawConn, v int16, topic string, id [16]byte, session, epoch int32, offsets map[int32]int64, forget ...int32) *kmsg.FetchResponse {
	c.t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(v)
	req.SessionID, req.SessionEpoch = session, epoch
	req.MaxBytes = 1 << 20
	if len(offsets) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		for p, off := range offsets {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, off, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	if len(forget) > 0 {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.TopicID, ft.Partitions = topic, id, forget
		req.ForgottenTopics = append(req.ForgottenTopics, ft)
	}
	return c.roundTrip(req).(*kmsg.FetchResponse)
}

// answered lists the partitions a fetch response carries, with their high
// watermarks.
func answered(resp *kmsg.FetchResponse) map[int32]int64 {
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = p.HighWatermark
		}
	}
	return out
}

func produceTo(t *testing.T, cl *kgo.Client, topic string, partition int32, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Partition: partition, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFetchSessions(t *testing.T) {
	b := NewTest(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, v := range []int16{7, 12, 13, 18} {
		topic := fmt.Sprintf("fs-v%d", v)
		createTestTopic(t, b, topic, 3)
		id := b.topics.get(topic).id
		produceTo(t, cl, topic, 0, 2)
		c := dial(t, b)
		all := map[int32]int64{0: 0, 1: 0, 2: 0}

		// A full fetch at epoch 0 opens a session and answers everything.
		full := sessionFetch(c, v, topic, id, 0, 0, all)
		if full.ErrorCode != 0 || full.SessionID == 0 || len(answered(full)) != 3 {
			t.Fatalf("v%d full fetch: error %d, session %d, partitions %v", v, full.ErrorCode, full.SessionID, answered(full))
		}
		s := full.SessionID

		// The session keeps partition 0 at offset 0 until told otherwise,
		// so its records come again.
		if got := answered(sessionFetch(c, v, topic, id, s, 1, nil)); len(got) != 1 || got[0] != 2 {
			t.Fatalf("v%d: incremental fetch answered %v, want partition 0's records again", v, got)
		}
		// The client moves partition 0 past its records: nothing changed
		// anywhere else, so the answer is empty.
		if got := answered(sessionFetch(c, v, topic, id, s, 2, map[int32]int64{0: 2})); len(got) != 0 {
			t.Fatalf("v%d: incremental fetch with no news answered %v", v, got)
		}
		// New records on partition 1: only it is answered, even though the
		// request names no partition.
		produceTo(t, cl, topic, 1, 1)
		if got := answered(sessionFetch(c, v, topic, id, s, 3, nil)); len(got) != 1 || got[1] == 0 {
			t.Fatalf("v%d: after a produce to partition 1, answered %v", v, got)
		}
		// The client moves partition 1 past its record: the session keeps
		// the new position, so the next fetch has nothing to say.
		if got := answered(sessionFetch(c, v, topic, id, s, 4, map[int32]int64{1: 1})); len(got) != 0 {
			t.Fatalf("v%d: after moving partition 1 to its end, answered %v", v, got)
		}
		// Forgotten partitions are no longer answered, even with news.
		sessionFetch(c, v, topic, id, s, 5, nil, 1)
		produceTo(t, cl, topic, 1, 1)
		if got := answered(sessionFetch(c, v, topic, id, s, 6, nil)); len(got) != 0 {
			t.Fatalf("v%d: a forgotten partition was answered: %v", v, got)
		}
		// Epochs must follow one another; a wrong one leaves the session as
		// it was.
		if r := sessionFetch(c, v, topic, id, s, 9, nil); r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
			t.Fatalf("v%d: wrong epoch: error %d", v, r.ErrorCode)
		}
		if r := sessionFetch(c, v, topic, id, s, 7, nil); r.ErrorCode != 0 {
			t.Fatalf("v%d: right epoch after a wrong one: error %d", v, r.ErrorCode)
		}
		// A sessionless full fetch (epoch -1) naming the session closes it.
		if r := sessionFetch(c, v, topic, id, s, -1, all); r.SessionID != 0 || len(answered(r)) != 3 {
			t.Fatalf("v%d: sessionless fetch: session %d, partitions %v", v, r.SessionID, answered(r))
		}
		if r := sessionFetch(c, v, topic, id, s, 8, nil); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
			t.Fatalf("v%d: fetch on a closed session: error %d", v, r.ErrorCode)
		}
	}
}

func TestFetchSessionCacheEviction(t *testing.T) {
	c := newFetchSessionCache(2)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	targets := func(n int) []fetchTarget {
		out := make([]fetchTarget, n)
		for i := range out {
			out[i].key = sessionKey{topic: "t", partition: int32(i)}
		}
		return out
	}
	a, bb := c.create(targets(1)), c.create(targets(3))
	if a == nil || bb == nil {
		t.Fatal("sessions not created while the cache had room")
	}
	// Full, nothing idle long enough, and the newcomer is not larger than
	// the smallest: no session.
	if s := c.create(targets(1)); s != nil {
		t.Fatal("a session was created in a full cache without a victim")
	}
	// A larger newcomer displaces the smallest session.
	now = now.Add(time.Second)
	if s := c.create(targets(2)); s == nil || c.sessions[a.id] != nil {
		t.Fatal("a larger session did not replace the smallest")
	}
	// After min.incremental.fetch.session.eviction.ms of idleness the least
	// recently used goes, whatever the sizes.
	now = now.Add(fetchSessionMinEviction)
	if s := c.create(targets(1)); s == nil || c.sessions[bb.id] != nil {
		t.Fatal("an idle session was not evicted")
	}
}

// TestKgoConsumesThroughASession: kgo opens a session and goes on with
// incremental fetches; every record arrives once, in order.
func TestKgoConsumesThroughASession(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "kfs", 4)
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("kfs"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n = 2000
	for i := 0; i < n; i++ {
		prod.Produce(t.Context(), &kgo.Record{Key: []byte{byte(i % 7)}, Value: []byte{byte(i)}}, nil)
		if i == n/2 {
			if err := prod.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := prod.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("kfs"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxPartitionBytes(512)) // many small fetches
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	next := map[int32]int64{}
	for got := 0; got < n; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d", got, n)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("partition %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			got++
		})
	}
	b.fetchSessions.mu.Lock()
	defer b.fetchSessions.mu.Unlock()
	if len(b.fetchSessions.sessions) != 1 {
		t.Fatalf("%d fetch sessions, want kgo's one", len(b.fetchSessions.sessions))
	}
	for _, s := range b.fetchSessions.sessions {
		if s.epoch < 3 || len(s.parts) != 4 {
			t.Fatalf("kgo's session: epoch %d, %d partitions", s.epoch, len(s.parts))
		}
	}
}

func TestFetchSessionsOff(t *testing.T) {
	b := NewTest(t, WithConfig(func(c *Config) { c.FetchSessionCacheSlots = 0 }))
	createTestTopic(t, b, "off", 1)
	r := sessionFetch(dial(t, b), 12, "off", [16]byte{}, 0, 0, map[int32]int64{0: 0})
	if r.ErrorCode != 0 || r.SessionID != 0 || len(answered(r)) != 1 {
		t.Fatalf("with no session slots: error %d, session %d, partitions %v", r.ErrorCode, r.SessionID, answered(r))
	}
}
