package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// auto.leader.rebalance.enable: leaderships that a broker's shutdown moved
// away go back to it, their preferred replica, once it is back in the
// ISR, within leader.imbalance.check.interval.seconds; turned off, they
// stay where they went.
func TestClusterAutoLeaderRebalance(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		t.Run(fmt.Sprintf("enable=%v", enabled), func(t *testing.T) { balanceAfterRestart(t, enabled) })
	}
}

func balanceAfterRestart(t *testing.T, enabled bool) {
	c := NewTestCluster(t, 3, WithConfig(func(cfg *Config) {
		cfg.AutoLeaderRebalanceEnable, cfg.LeaderImbalanceCheckIntervalSeconds = enabled, 1
	}))
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "balance", 6, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("balance", 6)
	victim := c.Controller()%3 + 1 // not the controller: its quorum stays put
	var preferred []int32
	for p := int32(0); p < 6; p++ {
		if c.Leader("balance", p) == victim {
			preferred = append(preferred, p)
		}
	}
	if len(preferred) == 0 {
		t.Fatalf("node %d leads nothing", victim)
	}
	ledBy := func() (n int) {
		for _, p := range preferred {
			if c.Leader("balance", p) == victim {
				n++
			}
		}
		return n
	}
	c.Stop(victim)
	if n := ledBy(); n != 0 {
		t.Fatalf("node %d still leads %d partitions after its shutdown", victim, n)
	}
	c.Restart(victim)
	restarted := time.Now()
	// Back in the ISR once it fetched (replica.lag.time.max.ms is far
	// off), then the next round: a few intervals at most.
	deadline := restarted.Add(8 * time.Second)
	if !enabled {
		deadline = restarted.Add(3 * time.Second) // three intervals
	}
	for ledBy() != len(preferred) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	switch n := ledBy(); {
	case enabled && n != len(preferred):
		t.Errorf("with auto.leader.rebalance.enable, node %d leads %d of its %d preferred partitions 8 s after its restart", victim, n, len(preferred))
	case enabled:
		t.Logf("leaderships back %v after the restart", time.Since(restarted).Round(10*time.Millisecond))
	case n != 0:
		t.Errorf("with auto.leader.rebalance.enable=false, node %d got back %d leaderships", victim, n)
	}
}

// Kafka's keys and defaults: on, every 300 s (at least 1);
// leader.imbalance.per.broker.percentage is accepted, as KRaft reads and
// ignores it.
func TestAutoLeaderRebalanceKeys(t *testing.T) {
	if d := DefaultConfig(); !d.AutoLeaderRebalanceEnable || d.LeaderImbalanceCheckIntervalSeconds != 300 {
		t.Errorf("defaults: enable %v, interval %d s", d.AutoLeaderRebalanceEnable, d.LeaderImbalanceCheckIntervalSeconds)
	}
	cfg, unknown, err := ConfigFromProperties(map[string]string{
		"auto.leader.rebalance.enable": "false", "leader.imbalance.check.interval.seconds": "5", "leader.imbalance.per.broker.percentage": "20",
	})
	if err != nil || len(unknown) != 0 || cfg.AutoLeaderRebalanceEnable || cfg.LeaderImbalanceCheckIntervalSeconds != 5 {
		t.Errorf("err %v, unknown %v, enable %v, interval %d", err, unknown, cfg.AutoLeaderRebalanceEnable, cfg.LeaderImbalanceCheckIntervalSeconds)
	}
	if _, _, err := ConfigFromProperties(map[string]string{"leader.imbalance.check.interval.seconds": "0"}); err == nil || !strings.Contains(err.Error(), "leader.imbalance.check.interval.seconds") {
		t.Errorf("interval 0: %v", err)
	}
}
