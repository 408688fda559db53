package metadata

import (
	"context"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/testutil/netproxy"
)

// QuorumConfig.Dial routes a node's Raft connections through the address
// it names: with a proxy on every link, blackholing the active
// controller's links isolates it, the two others elect one of themselves
// and commit without it, and once healed it catches up. (Were Dial
// ignored, the blocked proxies would carry no traffic and change nothing.)
func TestQuorumDialThroughProxies(t *testing.T) {
	// links[from][to] carries from's connections to to.
	links := map[int32]map[int32]*netproxy.Proxy{}
	nodes := startQuorum(t, 3, func(nodes []*quorumNode) {
		for _, from := range nodes {
			id := from.cfg.NodeID
			links[id] = map[int32]*netproxy.Proxy{}
			from.cfg.Dial = map[int32]string{}
			for to, addr := range from.cfg.Voters {
				if to != id {
					links[id][to] = netproxy.Start(t, addr)
					from.cfg.Dial[to] = links[id][to].Addr()
				}
			}
		}
	})
	ctx := t.Context()
	leader, off := commitTopic(t, nodes, "before", 1)
	converged(t, nodes, off)
	// Followers need not have dialed anyone (a node elected before they
	// timed out), the controller replicating to them has.
	for id, p := range links[leader.cfg.NodeID] {
		if p.Accepted() == 0 {
			t.Errorf("controller %d never dialed node %d through its proxy", leader.cfg.NodeID, id)
		}
	}

	old := leader.cfg.NodeID
	for from, to := range links {
		for id, p := range to {
			if from == old || id == old {
				p.Block(netproxy.Both)
			}
		}
	}
	var others []*quorumNode
	for _, nd := range nodes {
		if nd != leader {
			others = append(others, nd)
		}
	}
	_, off = commitTopic(t, others, "isolated", 2)
	converged(t, others, off)
	actx, cancel := context.WithTimeout(ctx, time.Second)
	if _, err := leader.q.Append(actx, &Topic{Name: "minority", ID: [16]byte{3}}); err == nil {
		t.Error("the isolated old controller committed an append")
	}
	cancel()
	if leader.q.AppliedOffset() >= off {
		t.Errorf("the isolated node applied offset %d, committed while it was cut off", off)
	}

	for _, to := range links {
		for _, p := range to {
			p.Unblock()
		}
	}
	img := converged(t, nodes, off)
	if img.Topics["minority"] != nil {
		t.Error("the isolated controller's append was committed")
	}
}
