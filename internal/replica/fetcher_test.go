package replica

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
	"github.com/kafkit/kafkit/internal/storage"
)

// fakeLeader answers a follower's Fetch with OFFSET_OUT_OF_RANGE above
// its end offset (end) and records the ListOffsets it is asked.
type fakeLeader struct {
	mu          sync.Mutex
	end         int64   // the leader's log end offset
	listEnd     int64   // what ListOffsets latest answers
	fetched     []int64 // fetch offsets, in order
	listOffsets []*kmsg.ListOffsetsRequest
}

func (l *fakeLeader) send(_ context.Context, id int32, req kmsg.Request) (kmsg.Response, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		resp := kmsg.NewPtrFetchResponse()
		for _, rt := range r.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				l.fetched = append(l.fetched, rp.FetchOffset)
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition, sp.LogStartOffset, sp.HighWatermark = rp.Partition, 0, l.end
				sp.RecordBatches = []byte{}
				if rp.FetchOffset > l.end {
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		// A caught-up follower long-polls; do not spin the test.
		time.Sleep(5 * time.Millisecond)
		return resp, nil
	case *kmsg.ListOffsetsRequest:
		l.listOffsets = append(l.listOffsets, r)
		resp := kmsg.NewPtrListOffsetsResponse()
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = r.Topics[0].Topic
		sp := kmsg.NewListOffsetsResponseTopicPartition()
		sp.Partition, sp.Offset, sp.LeaderEpoch = r.Topics[0].Partitions[0].Partition, l.listEnd, 5
		st.Partitions = append(st.Partitions, sp)
		resp.Topics = append(resp.Topics, st)
		return resp, nil
	}
	return nil, kerr.UnsupportedVersion
}

// followerFixture is broker 2 following broker 1 at leader epoch 5 on a
// log of 10 records written at epoch 3.
func followerFixture(t *testing.T, leader *fakeLeader) *Partition {
	t.Helper()
	l, err := storage.Open(storage.NewMemFS(), "/t-0", storage.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for range 10 { // a batch per record: truncation cuts whole batches
		bl := recordbatch.NewBuilder(recordbatch.Options{}, 0)
		bl.Append(time.Now().UnixMilli(), nil, []byte("v"), nil)
		batch, err := bl.Finish(recordbatch.NoProducer())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(batch, time.Now(), 3); err != nil {
			t.Fatal(err)
		}
	}
	m := NewManager(Config{
		NodeID: 2, LagMax: 10 * time.Second, FetchBackoff: 20 * time.Millisecond, FetchWait: 10 * time.Millisecond,
		MinISR:      func(string) int { return 1 },
		BrokerEpoch: func() int64 { return 200 },
		Send:        leader.send,
		AlterPartition: func(context.Context, *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error) {
			return nil, kerr.NotController
		},
	})
	t.Cleanup(m.Close)
	m.SetBrokers(map[int32]Broker{1: {Epoch: 100}, 2: {Epoch: 200}})
	p := m.NewPartition("t", 0, [16]byte{1}, l, 0, func() {})
	m.Apply(p, State{Leader: 1, LeaderEpoch: 5, PartitionEpoch: 7, Replicas: []int32{1, 2}, ISR: []int32{1, 2}})
	return p
}

// A follower whose fetch offset is above the leader's log end gets
// OFFSET_OUT_OF_RANGE; as Kafka's fetchOffsetAndTruncate it asks the
// leader's end offset (ListOffsets latest with its replica id and the
// leader epoch it follows), truncates its log there and fetches from it.
func TestFollowerOutOfRangeTruncatesToLeaderEnd(t *testing.T) {
	leader := &fakeLeader{end: 4, listEnd: 4}
	p := followerFixture(t, leader)
	waitFor(t, "fetch from the leader's end", func() bool {
		leader.mu.Lock()
		defer leader.mu.Unlock()
		return len(leader.fetched) > 0 && leader.fetched[len(leader.fetched)-1] == 4
	})
	if end := p.Log.EndOffset(); end != 4 {
		t.Fatalf("follower log end %d, want 4 (the leader's)", end)
	}
	leader.mu.Lock()
	defer leader.mu.Unlock()
	if leader.fetched[0] != 10 || len(leader.listOffsets) != 1 {
		t.Fatalf("fetched at %v after %d ListOffsets, want 10 first and one ListOffsets", leader.fetched, len(leader.listOffsets))
	}
	r := leader.listOffsets[0]
	rp := r.Topics[0].Partitions[0]
	if r.ReplicaID != 2 || r.Topics[0].Topic != "t" || rp.Timestamp != -1 || rp.CurrentLeaderEpoch != 5 {
		t.Fatalf("ListOffsets replica %d topic %s timestamp %d epoch %d, want 2 t -1 5", r.ReplicaID, r.Topics[0].Topic, rp.Timestamp, rp.CurrentLeaderEpoch)
	}
}

// When the leader's end is not below the follower's (the leader appended
// in between), nothing is truncated: the follower backs off and fetches
// again.
func TestFollowerOutOfRangeLeaderNotBehind(t *testing.T) {
	leader := &fakeLeader{end: 4, listEnd: 12}
	p := followerFixture(t, leader)
	waitFor(t, "second round of OFFSET_OUT_OF_RANGE", func() bool {
		leader.mu.Lock()
		defer leader.mu.Unlock()
		return len(leader.listOffsets) >= 2
	})
	if end := p.Log.EndOffset(); end != 10 {
		t.Fatalf("follower log end %d, want 10 (nothing truncated)", end)
	}
}
