package consumer

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
)

// Issue 16's 250 ms: a record produced to a partition that is not in the
// Fetch the broker is holding (it had buffered data when that Fetch was
// sent) must not wait for that Fetch's fetch.max.wait.ms. Records go to p0
// only, one at a time, while p1 stays idle; with a 10 s max wait, each must
// arrive well within the 5 s each round allows. With a 1-byte
// max.partition.fetch.bytes p0 is left out of the Fetch sent while its
// record is buffered, so its next Fetch must go on the second connection.
func TestPartitionOutsideHeldFetchNotDelayed(t *testing.T) {
	for _, partBytes := range []int32{0, 1} {
		t.Run(fmt.Sprintf("max.partition.fetch.bytes=%d", partBytes), func(t *testing.T) {
			testPartitionOutsideHeldFetch(t, partBytes)
		})
	}
}

func testPartitionOutsideHeldFetch(t *testing.T, partBytes int32) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	cons := newConsumer(t, c, func(cfg *Config) {
		cfg.FetchMaxWait, cfg.MaxPartitionFetchBytes = 10*time.Second, partBytes
	})
	p0, p1 := kafkit.TopicPartition{Topic: "t", Partition: 0}, kafkit.TopicPartition{Topic: "t", Partition: 1}
	if err := cons.Assign(p0, p1); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 10*time.Second)
	for _, tp := range []kafkit.TopicPartition{p0, p1} {
		if err := cons.Seek(ctx, tp, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		produce(t, c, spread("t", 1, i, 1)...)
		if recs := pollN(t, testCtx(t, 5*time.Second), cons, 1); recs[0].Offset != int64(i) || recs[0].Partition != 0 {
			t.Fatalf("round %d: got p%d offset %d", i, recs[0].Partition, recs[0].Offset)
		}
	}
}

// TestKeepConnFreeForPartitionsBehind: a Fetch of caught-up partitions only
// (which the broker holds for fetch.max.wait.ms) does not take a broker's
// last free fetch connection while another of its partitions has records
// waiting there; any other Fetch goes.
func TestKeepConnFreeForPartitionsBehind(t *testing.T) {
	a, b := kafkit.TopicPartition{Topic: "t", Partition: 0}, kafkit.TopicPartition{Topic: "t", Partition: 1}
	idle := map[kafkit.TopicPartition]bool{a: true}
	for _, tc := range []struct {
		free   int
		behind bool
		tps    []kafkit.TopicPartition
		want   bool
	}{
		{1, true, []kafkit.TopicPartition{a}, true},
		{2, true, []kafkit.TopicPartition{a}, false},    // another connection stays free
		{1, false, []kafkit.TopicPartition{a}, false},   // nothing waits on the broker: a long poll of all
		{1, true, []kafkit.TopicPartition{a, b}, false}, // b may have records: answered at once
		{1, true, []kafkit.TopicPartition{b}, false},
	} {
		if got := keepConnFree(tc.free, tc.behind, tc.tps, idle); got != tc.want {
			t.Errorf("keepConnFree(%d free, behind %v, %v) = %v, want %v", tc.free, tc.behind, tc.tps, got, tc.want)
		}
	}
}

// TestCaughtUpPartitionsDoNotHoldUpOthers: partitions reaching the end of
// their logs one by one, each in a Fetch of its own that the broker holds
// for fetch.max.wait.ms, must not leave the partitions still behind
// without a connection to fetch on (keepConnFree). Without it this read
// took 20 s: it waited out two holds.
func TestCaughtUpPartitionsDoNotHoldUpOthers(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(4, "s"))
	counts := []int{500, 1500, 7500, 15000} // uneven: they end one after another
	var recs []*kgo.Record
	for p, n := range counts {
		for range n {
			recs = append(recs, &kgo.Record{Topic: "s", Partition: int32(p), Value: make([]byte, 100)})
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(testCtx(t, 30*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	const hold = 10 * time.Second
	cons := newConsumer(t, c, func(cfg *Config) { cfg.MaxPartitionFetchBytes, cfg.FetchMaxWait = 16<<10, hold })
	var tps []kafkit.TopicPartition
	for p := range int32(len(counts)) {
		tps = append(tps, kafkit.TopicPartition{Topic: "s", Partition: p})
	}
	if err := cons.Assign(tps...); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 30*time.Second)
	if err := cons.SeekToBeginning(ctx, tps...); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for got := 0; got < len(recs); {
		polled, err := cons.Poll(ctx)
		if err != nil {
			t.Fatalf("after %d of %d records: %v", got, len(recs), err)
		}
		got += len(polled)
	}
	if took := time.Since(start); took >= hold/2 {
		t.Fatalf("reading %d records took %v: partitions behind waited for a held Fetch (fetch.max.wait.ms %v)", len(recs), took, hold)
	}
}

// TestShareOutSpreadsPartitionsBehind: partitions behind are spread evenly
// over the free fetch connections, staying with the connection whose
// session holds them where the counts allow; caught-up partitions follow
// their sessions and are never spread on their own; a single free
// connection, or a single partition behind, gets one Fetch of all.
func TestShareOutSpreadsPartitionsBehind(t *testing.T) {
	tp := func(p int32) kafkit.TopicPartition { return kafkit.TopicPartition{Topic: "t", Partition: p} }
	tps := func(ps ...int32) []kafkit.TopicPartition {
		var out []kafkit.TopicPartition
		for _, p := range ps {
			out = append(out, tp(p))
		}
		return out
	}
	holding := func(conn int, ps ...int32) *brokerConns {
		bc := new(brokerConns)
		var want []wantPart
		for _, p := range ps {
			want = append(want, wantPart{tp: tp(p)})
		}
		bc[conn].session.fill(kmsg.NewPtrFetchRequest(), want)
		return bc
	}
	idle := func(ps ...int32) map[kafkit.TopicPartition]bool {
		m := make(map[kafkit.TopicPartition]bool)
		for _, p := range ps {
			m[tp(p)] = true
		}
		return m
	}
	for _, tc := range []struct {
		name string
		bc   *brokerConns
		free []int
		tps  []kafkit.TopicPartition
		idle map[kafkit.TopicPartition]bool
		want [2][]kafkit.TopicPartition
	}{
		{"fresh", new(brokerConns), []int{0, 1}, tps(0, 1, 2, 3), nil, [2][]kafkit.TopicPartition{tps(0, 2), tps(1, 3)}},
		{"odd", new(brokerConns), []int{0, 1}, tps(0, 1, 2), nil, [2][]kafkit.TopicPartition{tps(0, 2), tps(1)}},
		{"one free", new(brokerConns), []int{1}, tps(0, 1, 2, 3), nil, [2][]kafkit.TopicPartition{nil, tps(0, 1, 2, 3)}},
		{"one free, its session", holding(1, 0, 1), []int{1}, tps(0, 1, 2), nil, [2][]kafkit.TopicPartition{nil, tps(0, 1, 2)}},
		{"one behind", new(brokerConns), []int{0, 1}, tps(0, 1, 2), idle(1, 2), [2][]kafkit.TopicPartition{tps(0, 1, 2), nil}},
		{"one behind, session of most", holding(1, 1, 2), []int{0, 1}, tps(0, 1, 2), idle(1, 2), [2][]kafkit.TopicPartition{nil, tps(0, 1, 2)}},
		{"all caught up", new(brokerConns), []int{0, 1}, tps(0, 1), idle(0, 1), [2][]kafkit.TopicPartition{tps(0, 1), nil}},
		{"sessions kept", holding(1, 0, 1), []int{0, 1}, tps(0, 1, 2, 3), nil, [2][]kafkit.TopicPartition{tps(2, 3), tps(0, 1)}},
		// Conn 1's session held all four (one Fetch before): the shares
		// even out, and it keeps the ones it comes to first.
		{"evened out", holding(1, 0, 1, 2, 3), []int{0, 1}, tps(0, 1, 2, 3), nil, [2][]kafkit.TopicPartition{tps(3, 2), tps(0, 1)}},
		{"caught up follow sessions", holding(1, 4), []int{0, 1}, tps(0, 1, 4, 5), idle(4, 5), [2][]kafkit.TopicPartition{tps(0, 5), tps(1, 4)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := shareOut(tc.bc, tc.free, tc.tps, tc.idle)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("shareOut = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSpreadPartitionsThenLongPolls: once a backlog was read over both
// fetch connections (each Fetch covering some of the partitions), the
// caught-up partitions long-poll on both, and a record produced to any of
// them afterwards comes back at once, not after a Fetch's fetch.max.wait.ms
// (10 s here) as it would if a partition were left out of every held
// Fetch.
func TestSpreadPartitionsThenLongPolls(t *testing.T) {
	const parts = 4
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(parts, "t"))
	produce(t, c, spread("t", parts, 0, 4000)...)
	var mu sync.Mutex
	fetches := make(map[int]int) // Fetches by partitions named
	c.ControlKey(kmsg.Fetch.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		n, _ := named(r.(*kmsg.FetchRequest))
		mu.Lock()
		fetches[n]++
		mu.Unlock()
		return nil, nil, false
	})
	const hold = 10 * time.Second
	cons := newConsumer(t, c, func(cfg *Config) {
		cfg.FetchMaxWait, cfg.MaxPartitionFetchBytes, cfg.AutoOffsetReset = hold, 4<<10, OffsetResetEarliest
	})
	var tps []kafkit.TopicPartition
	for p := range int32(parts) {
		tps = append(tps, kafkit.TopicPartition{Topic: "t", Partition: p})
	}
	if err := cons.Assign(tps...); err != nil {
		t.Fatal(err)
	}
	pollN(t, testCtx(t, 30*time.Second), cons, 4000)
	mu.Lock()
	if fetches[parts/2] == 0 {
		t.Errorf("no Fetch named half of the partitions behind (Fetches by partitions named: %v)", fetches)
	}
	mu.Unlock()
	for i := range 2 * parts {
		time.Sleep(50 * time.Millisecond) // for the Fetches to be held again
		produce(t, c, spread("t", parts, 4000+i, 1)...)
		start := time.Now()
		recs := pollN(t, testCtx(t, hold/2), cons, 1)
		if took := time.Since(start); len(recs) != 1 || recs[0].Partition != int32(i%parts) {
			t.Fatalf("record %d: got %d records, partition %d, after %v", i, len(recs), recs[0].Partition, took)
		}
	}
}
