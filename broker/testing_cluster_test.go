package broker

import (
	"net"
	"testing"
	"time"
)

// A port something else holds for a moment when a node restarts (an
// outgoing connection given it as its ephemeral port) does not fail the
// restart: the node's fixed ports are bound again until they are free.
func TestTestClusterRestartWaitsForItsPorts(t *testing.T) {
	c := NewTestCluster(t, 3)
	id := c.Controller()%3 + 1
	client, controller := c.Broker(id).Addr(), c.Broker(id).cluster.voters[id]
	c.Kill(id)
	var held []net.Listener
	for _, addr := range []string{client, controller} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("holding %s: %v", addr, err)
		}
		held = append(held, ln)
		t.Cleanup(func() { ln.Close() })
	}
	release := time.AfterFunc(300*time.Millisecond, func() {
		for _, ln := range held {
			ln.Close()
		}
	})
	defer release.Stop()
	c.Restart(id)
	if got := c.Broker(id).Addr(); got != client {
		t.Errorf("node %d restarted on %s, want %s", id, got, client)
	}
	c.AwaitLive(3)
}
