package broker

import (
	"context"
	"time"

	"github.com/kafkit/kafkit/internal/metadata"
)

// auto.leader.rebalance.enable, as Kafka's KRaft controller does it: every
// leader.imbalance.check.interval.seconds the active controller elects
// the preferred (first) replica of every partition led by another, where
// the preferred one is live and in the ISR, so that leaderships moved
// away by a broker's failure or shutdown go back once it has caught up.
// leader.imbalance.per.broker.percentage was ZooKeeper mode's threshold:
// KRaft's controller, like this one, balances whatever is imbalanced.

// maxElectionsPerBalance bounds one round's elections, as KRaft's
// maxElectionsPerImbalance does; the next round then comes at once.
const maxElectionsPerBalance = 1000

// balanceSoon is the wait before the next round when the last one left
// partitions for it.
const balanceSoon = 10 * time.Millisecond

// balanceInterval is leader.imbalance.check.interval.seconds, 0 when
// auto.leader.rebalance.enable is off.
func (c *cluster) balanceInterval() time.Duration {
	if !c.b.cfg.AutoLeaderRebalanceEnable {
		return 0
	}
	return time.Duration(c.b.cfg.LeaderImbalanceCheckIntervalSeconds) * time.Second
}

// maybeBalanceLeaders runs a round of preferred leader elections if one
// is due, on controllerLoop while this node is the active controller
// (which scheduled the first round an interval after it became active).
func (c *cluster) maybeBalanceLeaders() {
	interval := c.balanceInterval()
	if interval <= 0 || time.Now().Before(c.ctl.balanceAt) {
		return
	}
	more := false
	ctx, cancel := context.WithTimeout(c.b.ctx, localWait)
	defer cancel()
	var elected int
	_, err := c.decide(ctx, func(img *metadata.Image) ([]metadata.Record, error) {
		out, _, _ := img.ElectPreferred(nil)
		if more = len(out) > maxElectionsPerBalance; more {
			out = out[:maxElectionsPerBalance]
		}
		elected = len(out)
		return out, nil
	})
	switch {
	case err != nil:
		c.b.log.Debug("auto leader rebalance", "err", err)
	case elected > 0:
		c.b.log.Info("auto leader rebalance: moved leaderships back to preferred replicas", "partitions", elected)
	}
	c.ctl.balanceAt = time.Now().Add(interval)
	if more && err == nil {
		c.ctl.balanceAt = time.Now().Add(balanceSoon)
	}
}
