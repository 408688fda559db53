package broker

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/metadata"
	"github.com/kafkit/kafkit/internal/testutil/netproxy"
)

// kafkit.peer.address.overrides sends a node's requests to another node
// (c.client: registration, heartbeats, forwarding) and its Raft traffic
// through the address it names: with a proxy per link, blackholing a
// broker's links gets it fenced for want of heartbeats, and healing them
// unfences it.
func TestClusterPeerAddressOverrides(t *testing.T) {
	var mu sync.Mutex
	links := map[[2]int32]*netproxy.Proxy{} // {from, to}
	c := NewTestCluster(t, 3, func(cfg *Config) {
		mu.Lock()
		defer mu.Unlock()
		var over []string
		for to, addr := range cfg.voters() {
			if from := int32(cfg.BrokerID); to != from {
				p := netproxy.Start(t, addr)
				links[[2]int32{from, to}] = p
				over = append(over, fmt.Sprintf("%d@%s", to, p.Addr()))
			}
		}
		if err := cfg.Set(map[string]string{peerOverridesKey: strings.Join(over, ",")}); err != nil {
			t.Fatal(err)
		}
	})
	ctl := c.Controller()
	victim := ctl%3 + 1
	fenced := func() bool {
		f := false
		c.Broker(ctl).cluster.q.View(func(img *metadata.Image) { f = img.Brokers[victim] == nil || img.Brokers[victim].Fenced })
		return f
	}
	for k, p := range links {
		if k[0] == victim || k[1] == victim {
			p.Block(netproxy.Both)
		}
	}
	await(t, fmt.Sprintf("node %d fenced once its links are cut", victim), 10*time.Second, fenced)
	for _, p := range links {
		p.Unblock()
	}
	await(t, fmt.Sprintf("node %d unfenced once healed", victim), 15*time.Second, func() bool { return !fenced() })
}

func await(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, within)
		}
	}
}
