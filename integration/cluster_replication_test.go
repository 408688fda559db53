package integration

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partitionOf asks the running nodes, in turn, for a partition's
// leader, leader epoch and ISR, with no wait for a broker count.
// With on, only that node is asked (its own image).
func (pc *processCluster) partitionOf(topic string, partition int32, on int32) (kmsg.MetadataResponseTopicPartition, bool) {
	for i, p := range pc.running {
		if p == nil || (on > 0 && int32(i+1) != on) {
			continue
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs[i]))
		if err != nil {
			pc.t.Fatal(err)
		}
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := cl.SeedBrokers()[0].Request(ctx, req)
		cancel()
		cl.Close()
		if err != nil {
			continue
		}
		md := r.(*kmsg.MetadataResponse)
		if len(md.Topics) == 1 && md.Topics[0].ErrorCode == 0 && int(partition) < len(md.Topics[0].Partitions) {
			return md.Topics[0].Partitions[partition], true
		}
	}
	return kmsg.MetadataResponseTopicPartition{}, false
}

// awaitPartition polls partitionOf until cond holds.
func (pc *processCluster) awaitPartition(what, topic string, partition int32, within time.Duration, cond func(kmsg.MetadataResponseTopicPartition) bool) kmsg.MetadataResponseTopicPartition {
	pc.t.Helper()
	return pc.awaitPartitionOn(0, what, topic, partition, within, cond)
}

// awaitPartitionOn is awaitPartition asking node on only (0: any).
func (pc *processCluster) awaitPartitionOn(on int32, what, topic string, partition int32, within time.Duration, cond func(kmsg.MetadataResponseTopicPartition) bool) kmsg.MetadataResponseTopicPartition {
	pc.t.Helper()
	var last kmsg.MetadataResponseTopicPartition
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if p, ok := pc.partitionOf(topic, partition, on); ok {
			if last = p; cond(p) {
				return p
			}
		}
	}
	pc.t.Fatalf("no %s within %v; last leader %d epoch %d ISR %v", what, within, last.Leader, last.LeaderEpoch, last.ISR)
	return last
}

// Leader crash under load (issue 12): an idempotent kgo producer with
// acks=all writes numbered records to a partition of RF 3 with
// min.insync.replicas=2 while its leader is killed with -9 and restarted,
// round after round (2 by default, 10 with KAFKIT_CLUSTER_LONG=1). Every
// acknowledged record is read back exactly once at the offset it was
// acknowledged at; the log holds each number once, in order; and no record
// a consumer saw during the run later disappeared.
func TestClusterLeaderCrashUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three broker processes")
	}
	rounds := 2
	if os.Getenv("KAFKIT_CLUSTER_LONG") == "1" {
		rounds = 10
	}
	pc := startClusterWith(t, 3, clusterOptions{props: "min.insync.replicas=2\nreplica.fetch.backoff.ms=100\n"})
	pc.metadata(3)
	admin, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := createTopicRetrying(t, admin, "crash", 1, 3, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	pc.awaitPartition("a leader with the full ISR", "crash", 0, 20*time.Second, func(p kmsg.MetadataResponseTopicPartition) bool {
		return p.Leader >= 0 && len(p.ISR) == 3
	})

	prod, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs...), kgo.DefaultProduceTopic("crash"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var mu sync.Mutex
	acked := map[int]int64{} // record number → acknowledged offset
	ackedN := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		sem := make(chan struct{}, 50)
		for seq := 0; ; seq++ {
			select {
			case <-ctx.Done():
				return
			case sem <- struct{}{}:
			}
			prod.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("%09d", seq))}, func(r *kgo.Record, err error) {
				<-sem
				if err == nil {
					mu.Lock()
					acked[seq] = r.Offset
					mu.Unlock()
				}
			})
		}
	}()

	// A consumer watching throughout: what it saw must stay.
	var seenMu sync.Mutex
	seen := map[int64]string{}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	watcher, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs...), kgo.ConsumeTopics("crash"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			watcher.PollFetches(watchCtx).EachRecord(func(r *kgo.Record) {
				seenMu.Lock()
				if v, ok := seen[r.Offset]; ok && v != string(r.Value) {
					t.Errorf("offset %d read as %q, then as %q", r.Offset, v, r.Value)
				}
				seen[r.Offset] = string(r.Value)
				seenMu.Unlock()
			})
		}
	}()

	awaitAcked := func(n int, what string) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ackedN() < n; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d records acknowledged within 60 s, want %d", what, ackedN(), n)
			}
		}
	}
	for round := range rounds {
		awaitAcked(ackedN()+300, fmt.Sprintf("round %d before the kill", round))
		before := pc.awaitPartition("a leader", "crash", 0, 20*time.Second, func(p kmsg.MetadataResponseTopicPartition) bool { return p.Leader >= 0 })
		leader := before.Leader
		pc.running[leader-1].kill()
		pc.running[leader-1] = nil
		killed := time.Now()
		pc.awaitPartition("a new leader", "crash", 0, 30*time.Second, func(p kmsg.MetadataResponseTopicPartition) bool {
			return p.Leader >= 0 && p.Leader != leader && p.LeaderEpoch > before.LeaderEpoch
		})
		awaitAcked(ackedN()+100, fmt.Sprintf("round %d after the kill", round))
		t.Logf("round %d: node %d killed; acknowledgments resumed after %v", round, leader, time.Since(killed).Round(time.Millisecond))
		pc.start(int(leader))
		pc.awaitPartition("the restarted node back in the ISR", "crash", 0, 60*time.Second, func(p kmsg.MetadataResponseTopicPartition) bool {
			return len(p.ISR) == 3
		})
	}
	cancel()
	<-produced
	flushCtx, flushCancel := context.WithTimeout(context.Background(), 30*time.Second)
	prod.Flush(flushCtx)
	flushCancel()
	stopWatch()
	<-watched
	watcher.Close()

	// Read the whole partition back from a fresh consumer.
	mu.Lock()
	want := maps2slice(acked)
	mu.Unlock()
	var maxOff int64 = -1
	for _, a := range want {
		maxOff = max(maxOff, a.off)
	}
	reader, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs...), kgo.ConsumeTopics("crash"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	log := map[int64]string{}
	var order []int64
	readCtx, readCancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer readCancel()
	for readCtx.Err() == nil {
		fs := reader.PollFetches(readCtx)
		fs.EachRecord(func(r *kgo.Record) {
			if _, dup := log[r.Offset]; !dup {
				order = append(order, r.Offset)
			}
			log[r.Offset] = string(r.Value)
		})
		if len(order) > 0 && order[len(order)-1] >= maxOff {
			break
		}
	}
	t.Logf("%d records acknowledged over %d rounds, %d in the log, %d seen while running", len(want), rounds, len(log), len(seen))
	for _, a := range want {
		if got, ok := log[a.off]; !ok || got != fmt.Sprintf("%09d", a.seq) {
			t.Errorf("record %d acknowledged at offset %d; the log has %q there (present: %v)", a.seq, a.off, got, ok)
		}
	}
	byValue := map[string]int64{}
	last := -1
	for _, off := range slices.Sorted(maps.Keys(log)) {
		v := log[off]
		if prev, dup := byValue[v]; dup {
			t.Errorf("record %s at offsets %d and %d", v, prev, off)
		}
		byValue[v] = off
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("offset %d holds %q", off, v)
		}
		if n <= last {
			t.Errorf("record %d at offset %d after record %d", n, off, last)
		}
		last = n
	}
	for off, v := range seen {
		if log[off] != v {
			t.Errorf("a consumer read %q at offset %d during the run; the log now has %q", v, off, log[off])
		}
	}
}

type crashAck struct {
	seq int
	off int64
}

func maps2slice(m map[int]int64) []crashAck {
	out := make([]crashAck, 0, len(m))
	for s, o := range m {
		out = append(out, crashAck{s, o})
	}
	return out
}
