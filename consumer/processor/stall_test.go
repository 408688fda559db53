package processor_test

// Issues 19 and 22: the runner when a handler blocks past
// max.poll.interval.ms, and when a commit can never succeed.

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/consumer/processor"
)

func newFake(t *testing.T) *kfake.Cluster {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// A handler that blocks while its partition is being revoked (the drain
// waits ShutdownTimeout, far past max.poll.interval.ms) makes the member
// leave the group: its partitions move to the other runner, which handles
// again what the stalled one never finished, and nothing the stalled runner
// did not finish is committed.
func TestRunnerStalledHandlerPartitionsMove(t *testing.T) {
	c := newFake(t)
	addrs := c.ListenAddrs()
	const topic, group, n = "stall", "stall-svc", 200
	createTopic(t, addrs, topic, 4)
	produce(t, addrs, topic, n)

	release := make(chan struct{})
	var mu sync.Mutex // guards the maps
	stuck := map[int]bool{}
	byB := map[int]bool{}
	cfg := func(h processor.Handler) processor.Config {
		cc := consumerConfig(addrs, group)
		cc.PartitionAssignmentStrategy = []string{consumer.AssignorCooperativeSticky}
		cc.MaxPollInterval = time.Second
		return processor.Config{
			Consumer: cc, Topics: []string{topic}, Handler: h,
			Concurrency: 4, CommitInterval: 100 * time.Millisecond, ShutdownTimeout: time.Minute,
		}
	}
	stopA := startRunner(t, cfg(func(ctx context.Context, r *kafkit.Record) error {
		id, _ := strconv.Atoi(string(r.Value))
		mu.Lock()
		stuck[id] = true
		mu.Unlock()
		select { // never finishes while the test watches
		case <-release:
		case <-ctx.Done():
		}
		return ctx.Err()
	}))
	defer stopA()
	defer close(release)
	waitFor(t, 20*time.Second, "A stuck on all four partitions", func() bool { mu.Lock(); defer mu.Unlock(); return len(stuck) == 4 })
	// Nothing A started may be committed: it finished nothing.
	commits := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Observe: true, Count: -1, When: func(r kmsg.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		return len(byB) == 0
	}})

	stopB := startRunner(t, cfg(func(ctx context.Context, r *kafkit.Record) error {
		id, _ := strconv.Atoi(string(r.Value))
		mu.Lock()
		byB[id] = true
		mu.Unlock()
		return nil
	}))
	defer stopB()
	waitFor(t, 30*time.Second, "B handling every record, A's unfinished ones again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(byB) == n
	})
	mu.Lock()
	for id := range stuck {
		if !byB[id] {
			t.Errorf("record %d, stuck in A, was not delivered again", id)
		}
	}
	mu.Unlock()
	if h := commits.Hits(); h != 0 {
		t.Errorf("%d commits before B handled anything, though A finished nothing", h)
	}
}

// Case 22.6: a commit that can never succeed (here a partition whose commits
// always fail retriably) gives up after default.api.timeout.ms instead of
// wedging the runner: the other topic keeps being processed.
func TestRunnerCommitBounded(t *testing.T) {
	c := newFake(t)
	addrs := c.ListenAddrs()
	createTopic(t, addrs, "bad", 1)
	createTopic(t, addrs, "good", 1)
	produce(t, addrs, "bad", 10)
	var mu sync.Mutex
	good := map[int]bool{}
	cc := consumerConfig(addrs, "bounded")
	cc.DefaultAPITimeout = time.Second
	stop := startRunner(t, processor.Config{
		Consumer: cc, Topics: []string{"bad", "good"}, CommitInterval: 100 * time.Millisecond, ShutdownTimeout: 2 * time.Second,
		Handler: func(ctx context.Context, r *kafkit.Record) error {
			if r.Topic == "good" {
				id, _ := strconv.Atoi(string(r.Value))
				mu.Lock()
				good[id] = true
				mu.Unlock()
			}
			return nil
		},
	})
	defer stop()
	f := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Topic: "bad", Err: kerr.UnknownTopicOrPartition, Count: -1})
	if err := f.Wait(testContext(t, 20*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the runner is inside the commit that cannot succeed
	produce(t, addrs, "good", 50)
	waitFor(t, 20*time.Second, "the other topic's records", func() bool { mu.Lock(); defer mu.Unlock(); return len(good) == 50 })
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
