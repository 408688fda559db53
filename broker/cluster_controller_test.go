package broker

import (
	"context"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/metadata"
)

// A heartbeat is answered, and counts, while the active controller is in
// the middle of a decision (which holds its lock across a Raft append,
// slow on a loaded machine): no broker is fenced while it keeps
// heartbeating. When heartbeats waited for that lock, a run of slow
// appends fenced live brokers, the controller itself among them, and
// kgo's suite on three nodes failed with NOT_LEADER_FOR_PARTITION and
// NOT_ENOUGH_REPLICAS.
func TestClusterHeartbeatsNotBehindDecisions(t *testing.T) {
	c := NewTestCluster(t, 3)
	c.AwaitLive(3)
	ctrl := c.Controller()
	other := ctrl%3 + 1
	session := time.Duration(c.Broker(ctrl).cfg.BrokerSessionTimeoutMs) * time.Millisecond
	ctl := &c.Broker(ctrl).cluster.ctl
	ctl.mu.Lock() // a decision in progress
	held := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := c.Broker(other).cluster.heartbeat(ctx, false)
	cancel()
	took := time.Since(held)
	time.Sleep(time.Until(held.Add(session + session/2))) // longer than a session
	ctl.mu.Unlock()
	if err != nil {
		t.Fatalf("heartbeat of node %d while the controller (node %d) decides: %v after %v", other, ctrl, err, took)
	}
	// The controller's loop checks every session/8; a broker it fenced
	// would show in its image within a few checks.
	time.Sleep(session / 2)
	c.Broker(ctrl).cluster.q.View(func(img *metadata.Image) {
		for id, br := range img.Brokers {
			if br.Fenced {
				t.Errorf("node %d fenced while it heartbeat", id)
			}
		}
	})
}
