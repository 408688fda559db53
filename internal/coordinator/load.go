package coordinator

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Loading and unloading. A single node loads every partition of
// __consumer_offsets at start-up (Load). On a cluster the coordinator
// serves the partitions its broker leads: the broker loads a partition
// from its log when it becomes the leader (LoadPartition) and unloads it
// when it stops being (UnloadPartition), as Kafka's coordinators do on
// election and resignation, so a broker that leads a partition again
// serves what its log holds then, never the state it had before.

// deferredCompletion is a transaction's marker written to a partition
// whose groups are not loaded: the load that follows applies it unless its
// replay already met the marker.
type deferredCompletion struct {
	producerID int64
	commit     bool
	offset     int64 // of the marker
}

// Load replays the records of __consumer_offsets (every partition, each in
// offset order, markers included) and then serves every partition. It
// decodes on the caller's goroutine, so the loop keeps answering
// COORDINATOR_LOAD_IN_PROGRESS meanwhile. A record that cannot be decoded
// fails the load. Offsets of transactions without a marker stay pending
// until CompleteTxnOffsets.
func (c *Coordinator) Load(ctx context.Context, recs iter.Seq2[LogRecord, error]) error {
	l, err := c.replay(recs)
	if err != nil {
		return err
	}
	all := make([]int32, c.cfg.NumPartitions)
	for p := range all {
		all[p] = int32(p)
	}
	return c.install(ctx, l, all)
}

// LoadPartition replays one partition's records (in offset order, markers
// included) and then serves its groups; until then they get
// COORDINATOR_LOAD_IN_PROGRESS. Groups of the partition still here from an
// earlier load are replaced.
func (c *Coordinator) LoadPartition(ctx context.Context, partition int32, recs iter.Seq2[LogRecord, error]) error {
	if partition < 0 || partition >= c.cfg.NumPartitions {
		return fmt.Errorf("loading __consumer_offsets-%d: %d partitions", partition, c.cfg.NumPartitions)
	}
	l, err := c.replay(recs)
	if err != nil {
		return fmt.Errorf("partition %d: %w", partition, err)
	}
	return c.install(ctx, l, []int32{partition})
}

// UnloadPartition stops serving a partition's groups: members waiting in a
// JoinGroup or SyncGroup are answered NOT_COORDINATOR (their client finds
// the new coordinator), timers stop, and the groups and their pending
// transactional offsets are forgotten. Their requests get NOT_COORDINATOR
// from then on (through Owns).
func (c *Coordinator) UnloadPartition(ctx context.Context, partition int32) error {
	if partition < 0 || partition >= c.cfg.NumPartitions {
		return fmt.Errorf("unloading __consumer_offsets-%d: %d partitions", partition, c.cfg.NumPartitions)
	}
	_, err := call(ctx, c, func() struct{} {
		c.loaded[partition] = false
		delete(c.deferred, partition)
		n := 0
		for id, g := range c.groups {
			if c.PartitionFor(id) == partition {
				c.unloadGroup(g)
				n++
			}
		}
		for pid, groups := range c.txns {
			for id := range groups {
				if c.PartitionFor(id) == partition {
					delete(groups, id)
				}
			}
			if len(groups) == 0 {
				delete(c.txns, pid)
			}
		}
		c.log.Info("unloaded groups", "partition", partition, "groups", n)
		return struct{}{}
	})
	return err
}

// unloadGroup fails g's waiting calls with NOT_COORDINATOR, stops its
// timers and forgets it (Kafka's onGroupUnloaded).
func (c *Coordinator) unloadGroup(g *group) {
	for _, m := range g.members {
		if m.heartbeat != nil {
			m.heartbeat.Stop()
		}
		m.heartbeatSeq++
		if m.join != nil {
			m.join <- joinError(kerr.NotCoordinator.Code, m.id)
			m.join = nil
		}
		if m.sync != nil {
			m.sync <- syncError(kerr.NotCoordinator.Code)
			m.sync = nil
		}
	}
	if g.consumer != nil {
		for _, m := range g.consumer.members {
			c.stopConsumerTimers(m)
		}
	}
	c.removeGroup(g)
}

// replay decodes records into a loader on the caller's goroutine.
func (c *Coordinator) replay(recs iter.Seq2[LogRecord, error]) (*loader, error) {
	l := &loader{cg: cgLoader{c.cfg.Topics}, groups: make(map[string]*group), txns: make(txnIndex),
		partitionFor: c.PartitionFor, now: time.Now(), last: make(map[int32]int64)}
	for r, err := range recs {
		if err != nil {
			return nil, fmt.Errorf("loading __consumer_offsets: %w", err)
		}
		if err := l.apply(r); err != nil {
			return nil, fmt.Errorf("loading __consumer_offsets: %w", err)
		}
		l.last[r.Partition] = max(l.last[r.Partition], r.Offset)
	}
	for id, g := range l.groups {
		if g.consumer != nil {
			l.cg.finish(g, l.now)
		}
		if g.protocolType == "" && g.generation == 0 && len(g.offsets) == 0 && len(g.txnOffsets) == 0 {
			delete(l.groups, id) // only tombstones remained
		}
	}
	return l, nil
}

// install makes the loop serve what l replayed of partitions.
func (c *Coordinator) install(ctx context.Context, l *loader, partitions []int32) error {
	_, err := call(ctx, c, func() struct{} {
		for id, g := range l.groups {
			if old := c.groups[id]; old != nil {
				c.unloadGroup(old)
			}
			c.groups[id] = g
			for _, m := range g.members {
				c.scheduleHeartbeat(g, m)
			}
			if g.consumer != nil {
				for _, m := range g.consumer.members {
					c.scheduleConsumerSession(g, m)
					c.watchRevocation(g, m)
				}
			}
		}
		for pid, groups := range l.txns {
			if c.txns[pid] == nil {
				c.txns[pid] = make(map[string]bool)
			}
			for id := range groups {
				c.txns[pid][id] = true
			}
		}
		for _, p := range partitions {
			c.loaded[p] = true
			last, seen := l.last[p]
			for _, d := range c.deferred[p] {
				if !seen || d.offset > last {
					c.txns.complete(c.groups, p, d.producerID, c.PartitionFor, d.commit)
				}
			}
			delete(c.deferred, p)
		}
		if len(partitions) == 1 {
			c.log.Info("loaded groups", "partition", partitions[0], "groups", len(l.groups))
		} else {
			c.log.Info("loaded groups", "groups", len(l.groups))
		}
		return struct{}{}
	})
	return err
}
