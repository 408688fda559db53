package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit/broker"
)

// kafkit cluster describe and topics describe on a three-node cluster:
// every broker, the active controller, and each partition's leader,
// replicas and ISR as kafka-topics.sh --describe prints them.
func TestClusterDescribeThreeNodes(t *testing.T) {
	c := broker.NewTestCluster(t, 3)
	addr := strings.Join(c.Addrs(), ",")
	out := ok(t, addr, "", "cluster", "describe").out
	if !strings.Contains(out, fmt.Sprintf("Controller: %d\n", c.Controller())) {
		t.Errorf("cluster describe, controller %d:\n%s", c.Controller(), out)
	}
	for id := 1; id <= 3; id++ {
		if !strings.Contains(out, fmt.Sprintf("\n%d  ", id)) {
			t.Errorf("cluster describe lacks broker %d:\n%s", id, out)
		}
	}
	ok(t, addr, "", "topics", "create", "--topic", "tri", "--partitions", "3", "--replication-factor", "3")
	c.AwaitTopic("tri", 3)
	var desc string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if desc = ok(t, addr, "", "topics", "describe", "--topic", "tri").out; strings.Contains(desc, "ReplicationFactor: 3") {
			break
		}
	}
	for p := int32(0); p < 3; p++ {
		leader := c.Leader("tri", p)
		want := fmt.Sprintf("Partition: %d\tLeader: %d\tReplicas: %d,", p, leader, leader)
		if !strings.Contains(desc, want) {
			t.Errorf("topics describe lacks %q:\n%s", want, desc)
		}
	}
}
