package integration

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/testutil/netproxy"
)

// The faults a processCluster started with proxies can inject: a crash
// (kill -9) and restart, a pause (SIGSTOP, cluster_pause_*_test.go) and
// resume, a network partition between nodes, and healing. Clients reach
// every node directly: only node-to-node links are cut, as when the
// brokers' network splits and the clients sit on both sides.

// kill sends SIGKILL to node and waits for it to be gone.
func (pc *processCluster) kill(node int) {
	if p := pc.running[node-1]; p != nil {
		p.kill()
		pc.running[node-1] = nil
	}
}

// restart starts a killed node again on its data and ports.
func (pc *processCluster) restart(node int) {
	pc.t.Helper()
	if pc.running[node-1] != nil {
		pc.t.Fatalf("node %d is running", node)
	}
	pc.start(node)
}

// partition cuts the links between a and b both ways: bytes in flight and
// new connections are held (blackholed) until heal.
func (pc *processCluster) partition(a, b int) {
	pc.t.Helper()
	for _, k := range [][2]int{{a, b}, {b, a}} {
		l := pc.links[k]
		if l == nil {
			pc.t.Fatalf("no proxy from node %d to node %d: start the cluster with proxies", k[0], k[1])
		}
		l.Block(netproxy.Both)
	}
}

// isolate partitions node from every other node.
func (pc *processCluster) isolate(node int) {
	for other := 1; other <= len(pc.running); other++ {
		if other != node {
			pc.partition(node, other)
		}
	}
}

// heal lifts every partition and delay.
func (pc *processCluster) heal() {
	for _, l := range pc.links {
		l.Unblock()
		l.Delay(0)
	}
}

// delay slows the links between a and b by d each way.
func (pc *processCluster) delay(a, b int, d time.Duration) {
	pc.links[[2]int{a, b}].Delay(d)
	pc.links[[2]int{b, a}].Delay(d)
}

// nodes are the ids of the nodes running now.
func (pc *processCluster) nodes() []int {
	var ids []int
	for i, p := range pc.running {
		if p != nil {
			ids = append(ids, i+1)
		}
	}
	return ids
}

// leaders maps each partition of topic to its leader as the running nodes'
// majority answer has it (a node cut off may still name itself), waiting
// up to within for every partition to have a live leader.
func (pc *processCluster) leaders(topic string, within time.Duration) (map[int32]int32, error) {
	var last error
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		votes := map[string]int{}
		answers := map[string]map[int32]int32{}
		for _, node := range pc.nodes() {
			m, err := pc.leadersOn(node, topic)
			if err != nil {
				last = err
				continue
			}
			k := fmt.Sprint(m)
			votes[k]++
			answers[k] = m
		}
		for k, n := range votes {
			if n*2 > len(pc.running) {
				return answers[k], nil
			}
		}
		last = fmt.Errorf("no majority among the nodes' leaders: %v", votes)
	}
	return nil, last
}

// leadersOn asks node for topic's leaders; an error unless every
// partition has a live leader.
func (pc *processCluster) leadersOn(node int, topic string) (map[int32]int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs[node-1]))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, err
	}
	md := r.(*kmsg.MetadataResponse)
	var live []int32
	for _, b := range md.Brokers {
		live = append(live, b.NodeID)
	}
	if len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 {
		return nil, fmt.Errorf("node %d: no topic %s", node, topic)
	}
	m := map[int32]int32{}
	for _, p := range md.Topics[0].Partitions {
		if p.Leader < 0 || !slices.Contains(live, p.Leader) {
			return nil, fmt.Errorf("node %d: partition %d has no live leader (%d)", node, p.Partition, p.Leader)
		}
		m[p.Partition] = p.Leader
	}
	return m, nil
}
