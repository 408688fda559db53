package consumer

// A consumer closed in the middle of a rebalance, between its JoinGroup's
// answer and a SyncGroup that succeeded, leaves the group, as Java's
// maybeLeaveGroup does. Otherwise the coordinator keeps the dead member in
// the generation until its session expires, and the others wait for it (for
// its SyncGroup when it led the join): the exactly-once pipeline of
// integration/eos_random_test.go, whose workers live a few seconds, no
// longer than that session, stopped committing for minutes after broker
// restarts, each rebalance waiting for a member that had died in the one
// before.

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCloseDuringRebalanceLeavesGroup(t *testing.T) {
	const group, topic = "close-mid-rebalance", "cmr"
	c := newCluster(t, kfake.SeedTopics(2, topic))
	ctx := testCtx(t, 30*time.Second)
	// Every SyncGroup fails retriably: the member has joined (it has an
	// id and a generation) but never completes the rebalance.
	syncs := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.SyncGroup}, Group: group, Err: kerr.CoordinatorLoadInProgress, Count: -1})
	defer syncs.Remove()
	leaving := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.LeaveGroup}, Group: group, Observe: true, Count: -1})

	cons := newConsumer(t, c, func(cfg *Config) {
		cfg.GroupID = group
		cfg.PartitionAssignmentStrategy = []string{AssignorRange}
	})
	if err := cons.Subscribe(topic); err != nil {
		t.Fatal(err)
	}
	stop := pollLoop(cons)
	defer stop()
	if err := syncs.Wait(ctx, 1); err != nil {
		t.Fatalf("the consumer never reached SyncGroup: %v", err)
	}
	if err := cons.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := leaving.Wait(waitCtx, 1); err != nil {
		t.Fatalf("the consumer closed in the middle of a rebalance never left the group: %v", err)
	}
}
