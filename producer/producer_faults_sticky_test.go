package producer

// Issue 21's sticky partitioner items: keyless records go only to partitions
// with a leader, and the sticky partition moves on after batch.size bytes as
// the records take them in their batches, as Java's BuiltInPartitioner.

import (
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

func TestStickyOnlyPartitionsWithLeader(t *testing.T) {
	for _, tc := range []struct {
		name      string
		available []int32
		want      map[int32]bool // nil: every partition
	}{
		{"two of eight", []int32{2, 5}, map[int32]bool{2: true, 5: true}},
		{"one", []int32{3}, map[int32]bool{3: true}},
		{"none known", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaders := []int32{-1, -1, -1, -1, -1, -1, -1, -1}
			for _, p := range tc.available {
				leaders[p] = 1
			}
			if tc.available == nil {
				leaders = make([]int32, 8) // every partition has a leader
			}
			p := newOfflineProducer(Config{BatchSize: 1}, "t", leaders) // every record moves on
			seen := map[int32]int{}
			for range 400 {
				r := &kafkit.Record{Topic: "t", Partition: kafkit.AnyPartition, Value: []byte("v")}
				if err := p.Send(testCtx(t), r, nil); err != nil {
					t.Fatal(err)
				}
				if got := r.Partition; got < 0 || got >= 8 || tc.want != nil && !tc.want[got] {
					t.Fatalf("keyless record went to partition %d, want one of %v", got, tc.available)
				}
				seen[r.Partition]++
			}
			if want := len(tc.want); want > 0 && len(seen) != want || tc.want == nil && len(seen) != 8 {
				t.Fatalf("partitions chosen: %v", seen)
			}
			// Keys hash over every partition, leaders or not, as in Java.
			k := []byte("key")
			r := &kafkit.Record{Topic: "t", Partition: kafkit.AnyPartition, Key: k}
			if err := p.Send(testCtx(t), r, nil); err != nil {
				t.Fatal(err)
			}
			if got, want := r.Partition, (Murmur2(k)&0x7fffffff)%8; got != want {
				t.Fatalf("keyed record went to %d, want murmur2 partition %d", got, want)
			}
		})
	}
}

// nextSticky leaves out partitions beyond the topic's count, which a
// leader list from newer metadata may name.
func TestNextStickyIgnoresOutOfRange(t *testing.T) {
	for range 100 {
		if got := nextSticky(-1, 8, []int32{6, 20}); got != 6 {
			t.Fatalf("nextSticky chose %d, want 6", got)
		}
	}
}

func TestStickyCountsBatchBytes(t *testing.T) {
	rec := kafkit.Record{Topic: "t", Partition: kafkit.AnyPartition, Value: []byte("0123456789"),
		Headers: []kafkit.Header{{Key: "trace-id", Value: make([]byte, 40)}}}
	size := recordbatch.NewBuilder(recordbatch.Options{}, 0).Append(0, rec.Key, rec.Value, rec.Headers)
	const batchSize = 500
	perSwitch := (batchSize + size - 1) / size // records before the partition moves on
	if perSwitch >= batchSize/len(rec.Value) {
		t.Fatalf("records of %d bytes are too small to tell batch bytes from value bytes", size)
	}
	p := newOfflineProducer(Config{BatchSize: batchSize}, "t", make([]int32, 5))
	send := func() int32 {
		r := rec
		if err := p.Send(testCtx(t), &r, nil); err != nil {
			t.Fatal(err)
		}
		return r.Partition
	}
	prev := int32(-1)
	for sw := range 20 {
		cur := send()
		if cur == prev {
			t.Fatalf("switch %d: stayed on partition %d", sw, cur)
		}
		for i := 1; i < perSwitch; i++ {
			if got := send(); got != cur {
				t.Fatalf("switch %d record %d: went to %d, want %d (records of %d bytes in their batch)", sw, i, got, cur, size)
			}
		}
		prev = cur
	}
}

// Keyless records sent while three of four partitions have no leader go to
// the one that has; before, the sticky partitioner chose among all four and
// the records for the others expired waiting for a leader.
func TestFaultStickySkipsLeaderlessPartitions(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(4, "t"))
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Metadata}, Topic: "t", Partitions: []int32{1, 2, 3}, Err: kerr.LeaderNotAvailable, Count: -1})
	p := newProducer(t, c, Config{BatchSize: 200, DeliveryTimeout: 3 * time.Second, RequestTimeout: time.Second})
	a := newAcks()
	for i := range 60 { // the sticky partition moves on every few records
		if err := a.send(t, p, &kafkit.Record{Topic: "t", Partition: kafkit.AnyPartition, Value: append([]byte{byte(i)}, make([]byte, 60)...)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	a.wg.Wait()
	for v, err := range a.errs {
		if err != nil || a.recs[v].Partition != 0 {
			t.Fatalf("record %d: partition %d, %v; want stored in partition 0", v[0], a.recs[v].Partition, err)
		}
	}
}

// Sends from several goroutines count their records in the sticky stint
// they chose under the partition's lock (stickyStint.add): under -race this
// shows that the count needs no other synchronization, and every record
// lands in a batch of the partition its Send reported.
func TestStickyConcurrentSends(t *testing.T) {
	const goroutines, perGoroutine = 4, 2000
	p := newOfflineProducer(Config{BatchSize: 300, BufferMemory: 1 << 30}, "t", make([]int32, 6))
	var wg sync.WaitGroup
	perPartition := make([][6]int, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for range perGoroutine {
				r := &kafkit.Record{Topic: "t", Partition: kafkit.AnyPartition, Value: make([]byte, 20)}
				if err := p.Send(testCtx(t), r, nil); err != nil {
					t.Error(err)
					return
				}
				perPartition[g][r.Partition]++
			}
		})
	}
	wg.Wait()
	used := 0
	for part := range int32(6) {
		want := 0
		for g := range goroutines {
			want += perPartition[g][part]
		}
		got := 0
		for _, b := range p.acc.queue(kafkit.TopicPartition{Topic: "t", Partition: part}).batches {
			got += len(b.records)
		}
		if got != want {
			t.Errorf("partition %d holds %d records, Send put %d there", part, got, want)
		}
		if got > 0 {
			used++
		}
	}
	if used < 2 {
		t.Errorf("%d partitions used: the sticky partition never moved on", used)
	}
}
