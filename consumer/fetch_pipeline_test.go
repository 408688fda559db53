package consumer

import (
	"crypto/rand"
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

// TestKeepConnFreeForPartitionsLeftOut: a Fetch the broker may hold (none
// of its partitions known to have records waiting: caught up, or not
// fetched yet) does not take a broker's last free fetch connection while
// another of its partitions is in no Fetch but soon fetchable; any other
// Fetch goes.
func TestKeepConnFreeForPartitionsLeftOut(t *testing.T) {
	a, b, fresh := kafkit.TopicPartition{Topic: "t", Partition: 0}, kafkit.TopicPartition{Topic: "t", Partition: 1}, kafkit.TopicPartition{Topic: "t", Partition: 2}
	behind := map[kafkit.TopicPartition]bool{b: true} // a is caught up, fresh's log end unknown
	for _, tc := range []struct {
		free    int
		leftOut bool
		tps     []kafkit.TopicPartition
		want    bool
	}{
		{1, true, []kafkit.TopicPartition{a}, true},
		{1, true, []kafkit.TopicPartition{fresh}, true},
		{1, true, []kafkit.TopicPartition{a, fresh}, true},
		{2, true, []kafkit.TopicPartition{a}, false},    // another connection stays free
		{1, false, []kafkit.TopicPartition{a}, false},   // every partition is in a Fetch: a long poll of all
		{1, true, []kafkit.TopicPartition{a, b}, false}, // b has records: answered at once
		{1, true, []kafkit.TopicPartition{b}, false},
	} {
		if got := keepConnFree(tc.free, tc.leftOut, tc.tps, behind); got != tc.want {
			t.Errorf("keepConnFree(%d free, left out %v, %v) = %v, want %v", tc.free, tc.leftOut, tc.tps, got, tc.want)
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
// session holds them where the counts allow; the others follow their
// sessions and are never spread on their own; a single free connection,
// or a single partition behind, gets one Fetch of all.
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
	behind := func(ps ...int32) map[kafkit.TopicPartition]bool {
		m := make(map[kafkit.TopicPartition]bool)
		for _, p := range ps {
			m[tp(p)] = true
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		bc     *brokerConns
		free   []int
		tps    []kafkit.TopicPartition
		behind map[kafkit.TopicPartition]bool
		want   [2][]kafkit.TopicPartition
	}{
		{"all behind", new(brokerConns), []int{0, 1}, tps(0, 1, 2, 3), behind(0, 1, 2, 3), [2][]kafkit.TopicPartition{tps(0, 2), tps(1, 3)}},
		{"odd", new(brokerConns), []int{0, 1}, tps(0, 1, 2), behind(0, 1, 2), [2][]kafkit.TopicPartition{tps(0, 2), tps(1)}},
		{"one free", new(brokerConns), []int{1}, tps(0, 1, 2, 3), behind(0, 1, 2, 3), [2][]kafkit.TopicPartition{nil, tps(0, 1, 2, 3)}},
		{"one free, its session", holding(1, 0, 1), []int{1}, tps(0, 1, 2), behind(0, 1, 2), [2][]kafkit.TopicPartition{nil, tps(0, 1, 2)}},
		{"one behind", new(brokerConns), []int{0, 1}, tps(0, 1, 2), behind(0), [2][]kafkit.TopicPartition{tps(0, 1, 2), nil}},
		{"one behind, session of most", holding(1, 1, 2), []int{0, 1}, tps(0, 1, 2), behind(0), [2][]kafkit.TopicPartition{nil, tps(0, 1, 2)}},
		{"none behind", new(brokerConns), []int{0, 1}, tps(0, 1), nil, [2][]kafkit.TopicPartition{tps(0, 1), nil}},
		{"sessions kept", holding(1, 0, 1), []int{0, 1}, tps(0, 1, 2, 3), behind(0, 1, 2, 3), [2][]kafkit.TopicPartition{tps(2, 3), tps(0, 1)}},
		// Conn 1's session held all four (one Fetch before): the shares
		// even out, and it keeps the ones it comes to first.
		{"evened out", holding(1, 0, 1, 2, 3), []int{0, 1}, tps(0, 1, 2, 3), behind(0, 1, 2, 3), [2][]kafkit.TopicPartition{tps(3, 2), tps(0, 1)}},
		{"others follow sessions", holding(1, 4), []int{0, 1}, tps(0, 1, 4, 5), behind(0, 1), [2][]kafkit.TopicPartition{tps(0, 5), tps(1, 4)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := shareOut(tc.bc, tc.free, tc.tps, func(tp kafkit.TopicPartition) bool { return tc.behind[tp] })
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

// TestBufferedPartitionNotLeftOutOfLongPolls: a partition whose buffer is
// full (waiting for Poll, so in no Fetch) must find a fetch connection free
// once Poll drains it: a Fetch the broker may hold for fetch.max.wait.ms
// (no partition in it with records waiting) may take a broker's last free
// connection only when every partition of that broker is in a Fetch
// (keepConnFree). p0 and p1 each hold one record larger than
// max.partition.fetch.bytes, so each fills its buffer and leaves the
// Fetches until Poll, one record at a time, drains it; p2 and p3 are
// empty. Without the rule, p2 and p3 and the partition drained first
// long-poll on both connections, and the one drained last waits out a hold
// (10 s) before its next record is fetched.
func TestBufferedPartitionNotLeftOutOfLongPolls(t *testing.T) {
	const parts = 4
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(parts, "t"))
	const big = 5 << 10
	for p := range int32(2) {
		v := make([]byte, big)
		rand.Read(v) // incompressible: kgo compresses
		produce(t, c, &kgo.Record{Topic: "t", Partition: p, Value: v})
	}
	fetches := make(chan struct{}, 64)
	c.ControlKey(kmsg.Fetch.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		select {
		case fetches <- struct{}{}:
		default:
		}
		return nil, nil, false
	})
	const hold = 10 * time.Second
	cons := newConsumer(t, c, func(cfg *Config) {
		cfg.FetchMaxWait, cfg.MaxPartitionFetchBytes, cfg.MaxPollRecords = hold, 4<<10, 1
	})
	var tps []kafkit.TopicPartition
	for p := range int32(parts) {
		tps = append(tps, kafkit.TopicPartition{Topic: "t", Partition: p})
	}
	if err := cons.Assign(tps...); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 10*time.Second)
	for _, tp := range tps {
		if err := cons.Seek(ctx, tp, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Poll only once the fetcher sent all it would before: the first
	// Fetches bring p0's and p1's records back at once, and p2 and p3,
	// caught up, would then go out again.
	quiet := time.NewTimer(300 * time.Millisecond)
	for n := 0; n < 20; n++ {
		select {
		case <-fetches:
			quiet.Reset(300 * time.Millisecond)
			continue
		case <-quiet.C:
		}
		break
	}
	var order []int32 // the partition drained last first: the one a held Fetch would keep waiting
	for range 2 {
		recs := pollN(t, ctx, cons, 1)
		if recs[0].Partition > 1 || len(recs[0].Value) != big {
			t.Fatalf("got p%d, %d bytes", recs[0].Partition, len(recs[0].Value))
		}
		order = append([]int32{recs[0].Partition}, order...)
	}
	for _, p := range append(order, 2, 3) {
		produce(t, c, &kgo.Record{Topic: "t", Partition: p, Value: []byte("x")})
		start := time.Now()
		recs := pollN(t, testCtx(t, hold/2), cons, 1)
		if recs[0].Partition != p {
			t.Fatalf("record to p%d came from p%d", p, recs[0].Partition)
		}
		if took := time.Since(start); took > hold/4 {
			t.Fatalf("record to p%d took %v", p, took)
		}
	}
}
