package broker

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
	"github.com/kafkit/kafkit/internal/replica"
	"github.com/kafkit/kafkit/internal/storage"
)

// Data replication on a cluster node (issue 12), wired to
// internal/replica: the metadata image's partition changes drive each
// partition's leadership (applyReplication, from onApply in log order),
// produces append through the partition's leader state (appendLocal) and
// acks=all waits for the high watermark (awaitAcks), followers' fetches
// are served from the leader's log up to its end (replicaFill), and the
// replica fetchers reach the leaders through the cluster's per-node
// clients. A single node has none of it: its logs have no high watermark
// set, so every appended record is committed at once.

var replicaProps = []brokerProp{
	intProp("replica.lag.time.max.ms", 30000, 1, maxLong, "A follower that has not caught up with the leader for this long leaves the ISR.", func(c *Config) *int64 { return &c.ReplicaLagTimeMaxMs }),
	intProp("replica.fetch.max.bytes", 1048576, 0, math.MaxInt32, "Bytes a follower asks for per partition in each fetch (at least one batch is returned).", func(c *Config) *int64 { return &c.ReplicaFetchMaxBytes }),
	intProp("replica.fetch.response.max.bytes", 10485760, 0, math.MaxInt32, "Bytes a follower asks for in each whole fetch (at least one batch is returned).", func(c *Config) *int64 { return &c.ReplicaFetchResponseMaxBytes }),
	intProp("replica.fetch.wait.max.ms", 500, 0, math.MaxInt32, "Longest time a follower's fetch waits at the leader for replica.fetch.min.bytes; keep it below replica.lag.time.max.ms.", func(c *Config) *int64 { return &c.ReplicaFetchWaitMaxMs }),
	intProp("replica.fetch.min.bytes", 1, 1, math.MaxInt32, "Bytes a follower's fetch waits for at the leader.", func(c *Config) *int64 { return &c.ReplicaFetchMinBytes }),
	intProp("replica.fetch.backoff.ms", 1000, 0, math.MaxInt32, "Pause of a follower's fetching of a partition after an error.", func(c *Config) *int64 { return &c.ReplicaFetchBackoffMs }),
	intProp("num.replica.fetchers", 1, 1, math.MaxInt32, "Fetcher goroutines per leader a follower copies from.", func(c *Config) *int64 { return &c.NumReplicaFetchers }),
	intProp("replica.high.watermark.checkpoint.interval.ms", 5000, 1, maxLong, "How often the high watermarks are written to replication-offset-checkpoint.", func(c *Config) *int64 { return &c.ReplicaHWCheckpointMs }),
}

var errReplicationPaused = errors.New("replication paused by the test")

// replicationPause is the test seam that pauses a node's replica fetches
// (Config.replicationPaused). A fetch in flight at any moment of a pause
// brings nothing back, even when the pause has ended by the time its
// answer is read: the leader may have answered it with records appended
// during the pause, which a paused follower must not have.
type replicationPause struct {
	state atomic.Uint64 // odd while paused; every Store that changes it adds one
}

// Store pauses (true) or resumes (false) the node's replica fetches.
func (p *replicationPause) Store(paused bool) {
	for {
		s := p.state.Load()
		if (s&1 == 1) == paused || p.state.CompareAndSwap(s, s+1) {
			return
		}
	}
}

// Load reports whether the node's replica fetches are paused.
func (p *replicationPause) Load() bool { return p.state.Load()&1 == 1 }

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// startReplication creates the replica manager; called before the quorum
// opens, as restoring its snapshot already applies partition states.
func (c *cluster) startReplication() {
	cfg := &c.b.cfg
	c.repl = replica.NewManager(replica.Config{
		NodeID: c.b.nodeID, LagMax: ms(cfg.ReplicaLagTimeMaxMs),
		NumFetchers: int(cfg.NumReplicaFetchers), FetchMaxBytes: int32(cfg.ReplicaFetchMaxBytes),
		FetchResponseMaxBytes: int32(cfg.ReplicaFetchResponseMaxBytes), FetchWait: ms(cfg.ReplicaFetchWaitMaxMs),
		FetchMinBytes: int32(cfg.ReplicaFetchMinBytes), FetchBackoff: ms(cfg.ReplicaFetchBackoffMs),
		MinISR:      c.b.minISR,
		BrokerEpoch: c.epoch.Load,
		Send: func(ctx context.Context, id int32, req kmsg.Request) (kmsg.Response, error) {
			var before uint64
			if p := cfg.replicationPaused; p != nil {
				if before = p.state.Load(); before&1 == 1 {
					return nil, errReplicationPaused
				}
			}
			cl, err := c.clientOn(id, chanReplica)
			if err != nil {
				return nil, err
			}
			resp, err := cl.SeedBrokers()[0].Request(ctx, req)
			if p := cfg.replicationPaused; p != nil && p.state.Load() != before {
				return nil, errReplicationPaused // paused while in flight: nothing arrives
			}
			return resp, err
		},
		AlterPartition: func(ctx context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error) {
			resp, err := c.toControllerOn(ctx, chanAlterPartition, req, func(r kmsg.Response) int16 { return r.(*kmsg.AlterPartitionResponse).ErrorCode })
			if err != nil {
				return nil, err
			}
			return resp.(*kmsg.AlterPartitionResponse), nil
		},
		Logger: c.b.log.With("component", "replica"),
	})
}

// minISR is a topic's min.insync.replicas.
func (b *Broker) minISR(topic string) int {
	if t := b.topics.get(topic); t != nil {
		if v, ok := t.configs["min.insync.replicas"]; ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	return int(b.cfg.MinInsyncReplicas)
}

type partitionKey struct {
	id        [16]byte
	partition int32
}

// applyReplication gives the replica manager the brokers and the changed
// partitions' states of a batch of metadata records (after their local
// logs were opened), on raft's FSM goroutine.
func (c *cluster) applyReplication(records []metadata.Record, img *metadata.Image, first bool) {
	brokers, touched := c.replicationChanges(records, img, first)
	if brokers {
		bs := map[int32]replica.Broker{}
		for id, br := range img.Brokers {
			bs[id] = replica.Broker{Epoch: br.Epoch, Fenced: br.Fenced, ShuttingDown: br.ShuttingDown}
		}
		c.repl.SetBrokers(bs)
	}
	for k := range touched {
		t := img.TopicsByID[k.id]
		if t == nil || int(k.partition) >= len(t.Partitions) {
			continue
		}
		p := c.b.topics.partition(t.Name, k.partition)
		if p == nil {
			continue
		}
		rp := p.repl.Load()
		if rp == nil {
			rp = c.repl.NewPartition(t.Name, k.partition, t.ID, p.log, c.checkpointed(t.Name, k.partition), func() { p.notify() })
			p.repl.Store(rp)
		}
		st := t.Partitions[k.partition]
		c.repl.Apply(rp, replica.State{Leader: st.Leader, LeaderEpoch: st.LeaderEpoch, PartitionEpoch: st.PartitionEpoch, Replicas: st.Replicas, ISR: st.ISR})
	}
}

// replicationChanges says what a batch changes for replication: the
// brokers, and which partitions. Nothing until the image holds this run's
// registration, then every partition at once: a restarted node applies
// the metadata log from its start (or last snapshot), and the images on the
// way make it leader or follower of partitions at epochs long gone, as
// followCoordinators explains; Kafka's broker too publishes no metadata
// to its replica manager before it has caught up with the log.
func (c *cluster) replicationChanges(records []metadata.Record, img *metadata.Image, first bool) (bool, map[partitionKey]bool) {
	touched := map[partitionKey]bool{}
	if !c.caughtUp {
		return false, touched
	}
	if first {
		for _, t := range img.TopicsByID {
			for i := range t.Partitions {
				touched[partitionKey{t.ID, int32(i)}] = true
			}
		}
		return true, touched
	}
	brokers := false
	for _, r := range records {
		switch x := r.(type) {
		case *metadata.Partition:
			touched[partitionKey{x.TopicID, x.Partition}] = true
		case *metadata.PartitionChange:
			touched[partitionKey{x.TopicID, x.Partition}] = true
		case *metadata.RegisterBroker, *metadata.BrokerChange, *metadata.UnregisterBroker:
			brokers = true
		}
	}
	return brokers, touched
}

// stopReplicas stops replicating a topic's partitions before its logs go.
func (c *cluster) stopReplicas(t *topic) {
	for _, p := range t.partitions {
		if rp := p.repl.Load(); rp != nil {
			c.repl.Remove(rp)
		}
	}
}

// appendLocal appends a produced batch to the partition's log: on a
// cluster as its leader, at its leader epoch, refused without leadership
// (NOT_LEADER_OR_FOLLOWER) or, with acks=all, with fewer in-sync replicas
// than min.insync.replicas (NOT_ENOUGH_REPLICAS).
func (b *Broker) appendLocal(p *partition, acks int16, records []byte, now time.Time) (res storage.AppendResult, err error) {
	if b.cluster == nil {
		return p.log.Append(records, now, 0)
	}
	rp := p.repl.Load()
	if rp == nil {
		return res, kerr.NotLeaderForPartition
	}
	err = rp.AppendAsLeader(acks, func(epoch int32) error {
		var aerr error
		res, aerr = p.log.Append(records, now, epoch)
		return aerr
	})
	return res, err
}

// ackWait is a partition of an acks=all Produce waiting for the high
// watermark to pass its records.
type ackWait struct {
	rp       *replica.Partition
	required int64 // the offset after its last record
	topic    int   // indexes in the response
	part     int
	waiter   *replica.AckWaiter
}

// delayedProduce is an acks=all write waiting for its partitions (Kafka's
// DelayedProduce). It has no goroutine: each partition completes its part
// from the goroutine that moved its high watermark (replica.AwaitAcks),
// or the timeout or the connection's end withdraws the parts still
// waiting; each part ends once, and whoever ends the last runs complete.
type delayedProduce struct {
	waits    []ackWait
	failed   func(ackWait, int16)
	complete func()
	// pending counts the parts not ended, plus one that awaitAcks holds
	// until timer and stopCtx are set.
	pending atomic.Int32
	timer   *time.Timer
	stopCtx func() bool
}

// awaitAcks completes an acks=all write: each waiting partition is done
// when replica.AwaitAcks says so; what is still waiting after timeout (or
// when ctx ends: the connection went) gets REQUEST_TIMED_OUT. failed is
// called for each partition that failed, then complete once, on whichever
// goroutine ended the last part (under that partition's lock: neither may
// block nor take a partition's lock); both may run before awaitAcks
// returns.
func awaitAcks(ctx context.Context, timeout time.Duration, waits []ackWait, failed func(w ackWait, code int16), complete func()) {
	d := &delayedProduce{waits: waits, failed: failed, complete: complete}
	d.pending.Store(int32(len(waits)) + 1)
	for i := range d.waits {
		w := d.waits[i] // the callback's copy: it may run before waiter is set
		d.waits[i].waiter = w.rp.AwaitAcks(w.required, func(err error) {
			if err != nil {
				failed(w, errorCode(err))
			}
			d.partDone()
		})
	}
	d.timer = time.AfterFunc(timeout, d.expire)
	d.stopCtx = context.AfterFunc(ctx, d.expire)
	d.partDone()
}

// expire withdraws the parts still waiting and fails them.
func (d *delayedProduce) expire() {
	for _, w := range d.waits {
		if w.rp.CancelAwait(w.waiter) {
			d.failed(w, kerr.RequestTimedOut.Code)
			d.partDone()
		}
	}
}

func (d *delayedProduce) partDone() {
	if d.pending.Add(-1) == 0 {
		d.timer.Stop()
		d.stopCtx()
		d.complete()
	}
}

// failProduce fails a partition of an acks=all Produce that waited.
func failProduce(resp *kmsg.ProduceResponse) func(ackWait, int16) {
	return func(w ackWait, code int16) {
		sp := &resp.Topics[w.topic].Partitions[w.part]
		sp.ErrorCode = code
		sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
	}
}

// replicaOf is the follower a Fetch comes from (ReplicaID before v15,
// ReplicaState from v15, KIP-903) and its broker epoch (-1 before v15).
func replicaOf(version int16, req *kmsg.FetchRequest) (int32, int64, bool) {
	if version >= 15 {
		return req.ReplicaState.ID, req.ReplicaState.Epoch, req.ReplicaState.ID >= 0
	}
	return req.ReplicaID, -1, req.ReplicaID >= 0
}

// replicaFill is fillFetch for a follower's Fetch: each partition read up
// to the log end offset through its leader state, which answers diverging
// epochs and records the follower's position (which may move the high
// watermark); no isolation, no quota.
func (c *cluster) replicaFill(id int32, brokerEpoch int64) func(*reqCtx, []fetchTarget, *kmsg.FetchRequest, *kmsg.FetchResponse) (int, []*partition, bool) {
	b := c.b
	return func(rc *reqCtx, targets []fetchTarget, req *kmsg.FetchRequest, resp *kmsg.FetchResponse) (total int, parts []*partition, failed bool) {
		maxBytes := req.MaxBytes
		if maxBytes <= 0 {
			maxBytes = math.MaxInt32
		}
		// The connection's scratch buffer, as fillFetch's copying path:
		// a buffer per fetch cost the leader more than the read itself.
		// (No file chunks: peers come in through the CONTROLLER port's
		// mux, whose connections are not *net.TCPConn, and a chunk's
		// open, seek and close per partition outweigh a read into a warm
		// buffer at the few kilobytes a steady follower fetch carries.)
		var buf []byte
		if rc.scratch != nil {
			buf = (*rc.scratch)[:0]
			defer func() { *rc.scratch = buf[:0] }()
		}
		missing := kerr.UnknownTopicOrPartition
		if rc.version >= 13 {
			missing = kerr.UnknownTopicID
		}
		var t *topic
		for i, tg := range targets {
			if i == 0 || tg.key.topic != targets[i-1].key.topic || tg.key.id != targets[i-1].key.id {
				st := kmsg.NewFetchResponseTopic()
				st.Topic, st.TopicID = tg.key.topic, tg.key.id
				resp.Topics = append(resp.Topics, st)
				t = b.fetchTopic(rc, tg.key)
			}
			st := &resp.Topics[len(resp.Topics)-1]
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = tg.key.partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.RecordBatches = []byte{}
			switch {
			case t == nil:
				sp.ErrorCode = missing.Code
			case tg.key.partition < 0 || int(tg.key.partition) >= len(t.partitions):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case c.notLeader(t.name, tg.key.partition, tg.leaderEpoch, &sp.ErrorCode, &sp.CurrentLeader.LeaderID, &sp.CurrentLeader.LeaderEpoch):
			default:
				p := t.partitions[tg.key.partition]
				rp := p.repl.Load()
				if rp == nil {
					sp.ErrorCode = kerr.NotLeaderForPartition.Code
					break
				}
				parts = append(parts, p)
				limit := min(tg.maxBytes, maxBytes-int32(total))
				if limit <= 0 && total > 0 {
					break
				}
				lastEpoch := tg.lastFetchedEpoch
				if rc.version < 12 {
					lastEpoch = -1
				}
				read := func() error {
					start := len(buf)
					var err error
					if buf, err = p.log.ReadReplica(tg.offset, max(limit, 0), total == 0, buf); err != nil {
						buf = buf[:start]
						return err
					}
					if len(buf) > start {
						sp.RecordBatches = buf[start:len(buf):len(buf)]
						total += len(buf) - start
					}
					return nil
				}
				res, err := rp.ReadForFollower(replica.FollowerFetch{
					Replica: id, BrokerEpoch: brokerEpoch, CurrentLeaderEpoch: tg.leaderEpoch, LastFetchedEpoch: lastEpoch,
					FetchOffset: tg.offset, LogStartOffset: tg.logStart,
				}, read)
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = res.HighWatermark, res.LastStableOffset, res.LogStartOffset
				sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = res.Diverging.Epoch, res.Diverging.EndOffset
				if err != nil {
					var ke *kerr.Error
					if errors.As(err, &ke) {
						sp.ErrorCode = ke.Code // the leader's checks: nothing to log
					} else {
						sp.ErrorCode = fetchErrorCode(b, p, err)
					}
					break
				}
				if res.Diverging.Epoch >= 0 || res.Diverging.EndOffset >= 0 {
					failed = true // answered at once, as Kafka does
				}
			}
			failed = failed || sp.ErrorCode != 0
			st.Partitions = append(st.Partitions, sp)
		}
		return total, parts, failed
	}
}

// replicationCheckpoint is the file of each log dir where Kafka keeps its
// partitions' high watermarks.
const replicationCheckpoint = "replication-offset-checkpoint"

// loadCheckpoint reads the high watermarks of the last run: a partition
// starts from its entry (0 without one) until it leads or hears from its
// leader again.
func (c *cluster) loadCheckpoint() {
	m, err := storage.ReadOffsetCheckpoint(c.b.fs, filepath.Join(c.b.cfg.DataDir, replicationCheckpoint))
	if err != nil {
		c.b.log.Warn("high watermarks not read: starting them from 0", "file", replicationCheckpoint, "err", err)
		m = map[storage.TopicPartition]int64{}
	}
	c.hwLoaded = m
}

// checkpointed is a partition's high watermark as read at start.
func (c *cluster) checkpointed(topic string, partition int32) int64 {
	return c.hwLoaded[storage.TopicPartition{Topic: topic, Partition: partition}]
}

// writeCheckpoint writes every replicated partition's high watermark.
func (c *cluster) writeCheckpoint() {
	m := map[storage.TopicPartition]int64{}
	for _, t := range c.b.topics.all() {
		for _, p := range t.partitions {
			if p.repl.Load() != nil {
				m[storage.TopicPartition{Topic: t.name, Partition: p.index}] = p.log.HighWatermark()
			}
		}
	}
	if err := storage.WriteOffsetCheckpoint(c.b.fs, filepath.Join(c.b.cfg.DataDir, replicationCheckpoint), m); err != nil {
		c.b.log.Warn("writing the high watermarks", "file", replicationCheckpoint, "err", err)
	}
}

// checkpointLoop writes the high watermarks every
// replica.high.watermark.checkpoint.interval.ms.
func (c *cluster) checkpointLoop() {
	defer c.wg.Done()
	for c.sleep(ms(c.b.cfg.ReplicaHWCheckpointMs)) {
		c.writeCheckpoint()
	}
}

// leads reports whether this cluster node's replication state has it
// lead the partition: until the image's leadership reached it, reads
// (which stop at its high watermark) wait.
func (p *partition) leads() bool {
	rp := p.repl.Load()
	return rp != nil && rp.IsLeader()
}

// internalCommitTimeout bounds a coordinator's wait for its record to be
// committed.
const internalCommitTimeout = 10 * time.Second

// appendCommitted appends a coordinator's batch to its internal topic's
// partition and, on a cluster, returns only once the high watermark passed
// it (as Kafka's CoordinatorRuntime completes a write when the high
// watermark reaches it): an offset commit or a transaction's state is not
// acknowledged before the in-sync replicas have it. The coordinator blocks
// meanwhile.
func (b *Broker) appendCommitted(p *partition, batch []byte, now time.Time) (storage.AppendResult, error) {
	res, err := b.appendLocal(p, -1, batch, now)
	if err != nil {
		return res, err
	}
	p.notify()
	if b.cluster == nil {
		return res, nil
	}
	return res, awaitCommitted(b.ctx, p.repl.Load(), res.LastOffset+1)
}

// appendMarker writes a transaction marker as the partition's leader, at
// its leader epoch, and returns its offset and the wait for the high
// watermark to pass it: Kafka writes markers with acks=all, so a marker
// the coordinator counts as written survives the leader's loss (a lost one
// would leave the transaction open on the new leader, holding its last
// stable offset back for good). Appending and waiting are apart so that
// the markers of a WriteTxnMarkers are appended together and their waits
// overlap.
func (b *Broker) appendMarker(p *partition, m txnMarker) (int64, func(context.Context) error, error) {
	rp := p.repl.Load()
	if rp == nil {
		return -1, nil, kerr.NotLeaderForPartition
	}
	var off int64
	err := rp.AppendAsLeader(-1, func(leaderEpoch int32) error {
		var err error
		off, err = p.log.WriteMarker(m.producerID, m.epoch, m.commit, m.coordinatorEpoch, leaderEpoch)
		return err
	})
	if err != nil {
		return -1, nil, err
	}
	p.notify()
	return off, func(ctx context.Context) error { return awaitCommitted(ctx, rp, off+1) }, nil
}

// awaitCommitted waits, at most internalCommitTimeout, for rp's high
// watermark to reach required.
func awaitCommitted(ctx context.Context, rp *replica.Partition, required int64) (err error) {
	done := make(chan struct{})
	awaitAcks(ctx, internalCommitTimeout, []ackWait{{rp: rp, required: required}}, func(_ ackWait, code int16) {
		err = kerr.ErrorForCode(code)
	}, func() { close(done) })
	<-done
	return err
}
