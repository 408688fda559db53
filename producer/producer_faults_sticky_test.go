package producer

// Issue 21's sticky partitioner items: keyless records go only to partitions
// with a leader, and the sticky partition moves on after batch.size bytes as
// the records take them in their batches, as Java's BuiltInPartitioner.

import (
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
		{"out of range ignored", []int32{6, 20}, map[int32]bool{6: true}},
		{"none known", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewDefaultPartitioner(1).(clusterPartitioner) // every record moves on
			seen := map[int32]int{}
			for range 400 {
				got := p.partitionIn(&kafkit.Record{Topic: "t", Value: []byte("v")}, 8, tc.available)
				if got < 0 || got >= 8 || tc.want != nil && !tc.want[got] {
					t.Fatalf("keyless record went to partition %d, want one of %v", got, tc.available)
				}
				seen[got]++
			}
			if want := len(tc.want); want > 0 && len(seen) != want || tc.want == nil && len(seen) != 8 {
				t.Fatalf("partitions chosen: %v", seen)
			}
			// Keys hash over every partition, leaders or not, as in Java.
			k := []byte("key")
			if got, want := p.partitionIn(&kafkit.Record{Topic: "t", Key: k}, 8, tc.available), (Murmur2(k)&0x7fffffff)%8; got != want {
				t.Fatalf("keyed record went to %d, want murmur2 partition %d", got, want)
			}
		})
	}
}

func TestStickyCountsBatchBytes(t *testing.T) {
	rec := &kafkit.Record{Topic: "t", Value: []byte("0123456789"),
		Headers: []kafkit.Header{{Key: "trace-id", Value: make([]byte, 40)}}}
	size := recordbatch.NewBuilder(recordbatch.Options{}, 0).Append(0, rec.Key, rec.Value, rec.Headers)
	const batchSize = 500
	perSwitch := (batchSize + size - 1) / size // records before the partition moves on
	if perSwitch >= batchSize/len(rec.Value) {
		t.Fatalf("records of %d bytes are too small to tell batch bytes from value bytes", size)
	}
	p := NewUniformStickyPartitioner(batchSize).(clusterPartitioner)
	prev := int32(-1)
	for sw := range 20 {
		cur := p.partitionIn(rec, 5, nil)
		if cur == prev {
			t.Fatalf("switch %d: stayed on partition %d", sw, cur)
		}
		for i := 1; i < perSwitch; i++ {
			if got := p.partitionIn(rec, 5, nil); got != cur {
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
