package integration

// Issue 23: a randomized exactly-once run against the broker. Two
// consume-transform-produce pipelines (franz-go's GroupTransactSession and
// kafkit's transactional producer with its group consumer) copy one input
// topic while members join and leave, transactions abort at random and the
// broker restarts at random on its data directory, each time with another
// offsets.topic.num.partitions and transaction.state.log.num.partitions.
// At the end every input is exactly once in each output for a
// read_committed reader, no partition's LSO lags its high watermark, and no
// committed offset ever went back. KAFKIT_EOS_LONG=1 runs 100 iterations.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/producer"
)

func TestExactlyOnceRandomized(t *testing.T) {
	iterations, inputs, restarts := 1, 200, 2
	if os.Getenv("KAFKIT_EOS_LONG") != "" {
		iterations, inputs, restarts = 100, 400, 4
	}
	for i := range iterations {
		seed := uint64(time.Now().UnixNano())
		t.Run(fmt.Sprintf("iteration-%d-seed-%d", i, seed), func(t *testing.T) {
			runEOS(t, rand.New(rand.NewPCG(seed, uint64(i))), inputs, restarts)
		})
		if t.Failed() {
			return
		}
	}
}

const (
	eosIn         = "eos-in"
	eosPartitions = 3
	eosTxnTimeout = 5 * time.Second
	eosMaxPoll    = 8 // records per transaction, at most: many small ones
)

// eosCluster is the broker, restarted in place on the same port and data
// directory.
type eosCluster struct {
	t    *testing.T
	rng  *rand.Rand
	mu   sync.Mutex // guards b
	b    *broker.Broker
	dir  string
	addr string
}

func (c *eosCluster) start() {
	parts := []int64{1, 2, 3, 5}[c.rng.IntN(4)]
	c.b = broker.NewTest(c.t, broker.WithConfig(func(cfg *broker.Config) {
		cfg.InMemory, cfg.DataDir = false, c.dir
		if c.addr != "" {
			cfg.Listen = c.addr
		}
		cfg.OffsetsTopicNumPartitions, cfg.TxnStateNumPartitions = parts, parts
		cfg.GroupMinSessionTimeoutMs = 1000
	}))
	c.addr = c.b.Addr()
}

func (c *eosCluster) restart() {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.b.Close(ctx); err != nil {
		c.t.Errorf("closing the broker: %v", err)
	}
	c.start()
}

func runEOS(t *testing.T, rng *rand.Rand, inputs, restarts int) {
	cl := &eosCluster{t: t, rng: rng, dir: t.TempDir()}
	cl.start()
	addr := cl.addr
	createTopic(t, addr, eosIn, eosPartitions)
	for _, out := range []string{"eos-out-kgo", "eos-out-sdk"} {
		createTopic(t, addr, out, eosPartitions)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The inputs arrive in chunks while the broker restarts, so the
	// pipelines work through the restarts.
	fed := make(chan error, 1)
	frng := rand.New(rand.NewPCG(rng.Uint64(), 1))
	go func() { fed <- feedInputs(ctx, addr, inputs, frng) }()
	monitor := newOffsetMonitor(addr, []string{"eos-kgo", "eos-sdk"})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { monitor.run(stop) })
	var stats eosStats
	pipelines := []struct {
		group, out string
		worker     func(ctx context.Context, addr, group, out, txnID string, rng *rand.Rand, stats *eosStats) error
	}{
		{"eos-kgo", "eos-out-kgo", kgoEOSWorker},
		{"eos-sdk", "eos-out-sdk", sdkEOSWorker},
	}
	for _, p := range pipelines {
		// Two member slots per pipeline; each slot runs workers one after
		// another for random lifetimes, so members keep joining and
		// leaving. A slot keeps its transactional id: its next worker
		// fences the previous one.
		for slot := range 2 {
			wrng := rand.New(rand.NewPCG(rng.Uint64(), uint64(slot)))
			wg.Go(func() {
				for ctx.Err() == nil {
					select {
					case <-stop:
						return
					default:
					}
					life, cancelLife := context.WithTimeout(ctx, time.Duration(2+wrng.IntN(5))*time.Second)
					stats.add(p.group+" workers", 1)
					err := p.worker(life, addr, p.group, p.out, fmt.Sprintf("%s-%d", p.group, slot), wrng, &stats)
					cancelLife()
					if err != nil && ctx.Err() == nil {
						t.Logf("%s worker %d: %v (a new one takes over)", p.group, slot, err)
						time.Sleep(200 * time.Millisecond) // the broker may be restarting
					}
				}
			})
		}
	}
	for range restarts {
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
		cl.restart()
	}
	if err := <-fed; err != nil {
		t.Fatalf("producing the inputs: %v", err)
	}
	for _, p := range pipelines {
		waitFor(t, 2*time.Minute, p.group+" to commit every input", func() bool { return caughtUp(addr, p.group) })
	}
	close(stop)
	cancel()
	wg.Wait()
	t.Logf("%d inputs, %d restarts: %v", inputs, restarts, stats.String())

	// Workers stopped mid-transaction are aborted by the coordinator after
	// the transaction timeout at the latest.
	waitFor(t, eosTxnTimeout+20*time.Second, "every LSO at its high watermark", func() bool {
		return laggingLSO(t, addr) == ""
	})
	inputSeen := map[string]int{}
	for _, v := range kgoConsumeAll(t, addr, eosIn, kgo.ReadCommitted(), inputs) {
		inputSeen[v]++
	}
	if len(inputSeen) != inputs {
		t.Fatalf("the input topic holds %d distinct values, want %d", len(inputSeen), inputs)
	}
	for _, p := range pipelines {
		seen := map[string]int{}
		for _, v := range kgoConsumeAll(t, addr, p.out, kgo.ReadCommitted(), inputs) {
			seen[v]++
		}
		for i := range inputs {
			if n := seen["out-"+strconv.Itoa(i)]; n != inputSeen[strconv.Itoa(i)] {
				t.Errorf("%s: input %d (%d times in the input) is %d times in the committed output", p.out, i, inputSeen[strconv.Itoa(i)], n)
			}
		}
		if len(seen) != inputs {
			t.Errorf("%s: %d distinct outputs, want %d", p.out, len(seen), inputs)
		}
	}
	if msg := monitor.err(); msg != "" {
		t.Error(msg)
	}
}

// feedInputs produces the values 0..n-1 to the input topic in small chunks
// over a few seconds, idempotently and retrying through broker restarts.
func feedInputs(ctx context.Context, addr string, n int, rng *rand.Rand) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(eosIn), kgo.RetryTimeout(time.Minute))
	if err != nil {
		return err
	}
	defer cl.Close()
	for lo := 0; lo < n; {
		hi := min(n, lo+1+rng.IntN(15))
		var recs []*kgo.Record
		for i := lo; i < hi; i++ {
			s := strconv.Itoa(i)
			recs = append(recs, &kgo.Record{Key: []byte(s), Value: []byte(s)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return err
		}
		lo = hi
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
	}
	return nil
}

// kgoEOSWorker is one member of the franz-go pipeline, until ctx ends or
// the session fails.
func kgoEOSWorker(ctx context.Context, addr, group, out, txnID string, rng *rand.Rand, stats *eosStats) error {
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(addr), kgo.TransactionalID(txnID),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(eosIn), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic(out),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.TransactionTimeout(eosTxnTimeout),
		kgo.SessionTimeout(6*time.Second), kgo.RebalanceTimeout(10*time.Second),
		kgo.RequestRetries(100), kgo.RetryTimeout(30*time.Second))
	if err != nil {
		return err
	}
	defer sess.Close()
	for ctx.Err() == nil {
		fs := sess.PollRecords(ctx, 1+rng.IntN(eosMaxPoll))
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Partition: r.Partition, Value: []byte("out-" + string(r.Value))}, nil)
		})
		end := kgo.TryCommit
		if rng.IntN(5) == 0 {
			end = kgo.TryAbort
		}
		committed, err := sess.End(ctx, end)
		if err != nil {
			return fmt.Errorf("end: %w", err)
		}
		stats.add(fmt.Sprintf("%s committed %v", group, committed), 1)
	}
	return nil
}

// sdkEOSWorker is one member of kafkit's pipeline: its consumer's records
// go out in a transaction with their offsets; an abort seeks back, any
// failure ends the worker (its transaction aborted or fenced by the next).
func sdkEOSWorker(ctx context.Context, addr, group, out, txnID string, rng *rand.Rand, stats *eosStats) error {
	servers := []string{addr}
	p, err := producer.New(producer.Config{BootstrapServers: servers, TransactionalID: txnID, TransactionTimeout: eosTxnTimeout})
	if err != nil {
		return err
	}
	defer p.Close(context.Background())
	if err := p.InitTransactions(ctx); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	c, err := consumer.New(ctx, consumer.Config{BootstrapServers: servers, GroupID: group, DisableAutoCommit: true,
		IsolationLevel: consumer.ReadCommitted, AutoOffsetReset: consumer.OffsetResetEarliest,
		SessionTimeout: 6 * time.Second, HeartbeatInterval: time.Second, PartitionAssignmentStrategy: []string{consumer.AssignorRange},
		MaxPollRecords: 1 + rng.IntN(eosMaxPoll)})
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	if err := c.Subscribe(eosIn); err != nil {
		return err
	}
	for ctx.Err() == nil {
		recs, err := c.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("poll: %w", err)
		}
		if len(recs) == 0 {
			continue
		}
		md := c.GroupMetadata()
		first, next := map[kafkit.TopicPartition]int64{}, map[kafkit.TopicPartition]int64{}
		if err := p.BeginTransaction(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		for _, r := range recs {
			tp := kafkit.TopicPartition{Topic: r.Topic, Partition: r.Partition}
			if _, ok := first[tp]; !ok {
				first[tp] = r.Offset
			}
			next[tp] = r.Offset + 1
			if err := p.Send(ctx, &kafkit.Record{Topic: out, Partition: r.Partition, Value: []byte("out-" + string(r.Value))}, nil); err != nil {
				return fmt.Errorf("send: %w", err)
			}
		}
		if rng.IntN(5) == 0 {
			// Flushed first: the aborted records are in the log. (The
			// producer sends EndTxn even for a transaction that added no
			// partition, which Kafka refuses with INVALID_TXN_STATE;
			// Java's skips it.)
			if err := p.Flush(ctx); err != nil {
				return fmt.Errorf("flush: %w", err)
			}
			if err := p.AbortTransaction(ctx); err != nil {
				return fmt.Errorf("abort: %w", err)
			}
			for tp, off := range first {
				if err := c.Seek(ctx, tp, off); err != nil {
					return fmt.Errorf("seek after abort: %w", err)
				}
			}
			stats.add(group+" committed false", 1)
			continue
		}
		if err := p.SendOffsetsToTransaction(ctx, next, md); err != nil {
			return errors.Join(fmt.Errorf("offsets: %w", err), p.AbortTransaction(ctx))
		}
		if err := p.CommitTransaction(ctx); err != nil {
			return errors.Join(fmt.Errorf("commit: %w", err), p.AbortTransaction(ctx))
		}
		stats.add(group+" committed true", 1)
	}
	return nil
}

// caughtUp reports whether group has committed the end of every input
// partition.
func caughtUp(addr, group string) bool {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RetryTimeout(2*time.Second))
	if err != nil {
		return false
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ends, err := listOffsets(ctx, cl, 0, eosIn)
	if err != nil {
		return false
	}
	committed, err := committedOffsets(ctx, cl, group)
	if err != nil {
		return false
	}
	for key, end := range ends {
		if committed[key] != end {
			return false
		}
	}
	return true
}

// listOffsets returns the end of every partition of topics, "topic-p" to
// offset: the high watermark (isolation 0) or the LSO (1).
func listOffsets(ctx context.Context, cl *kgo.Client, isolation int8, topics ...string) (map[string]int64, error) {
	meta := kmsg.NewPtrMetadataRequest()
	for _, topic := range topics {
		meta.Topics = append(meta.Topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr(topic)})
	}
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = isolation
	for _, mt := range mresp.Topics {
		if mt.ErrorCode != 0 {
			return nil, fmt.Errorf("metadata of %s: error %d", *mt.Topic, mt.ErrorCode)
		}
		rt := kmsg.ListOffsetsRequestTopic{Topic: *mt.Topic}
		for _, mp := range mt.Partitions {
			rt.Partitions = append(rt.Partitions, kmsg.ListOffsetsRequestTopicPartition{Partition: mp.Partition, Timestamp: -1, CurrentLeaderEpoch: -1})
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				return nil, fmt.Errorf("offsets of %s-%d: error %d", rt.Topic, rp.Partition, rp.ErrorCode)
			}
			out[fmt.Sprintf("%s-%d", rt.Topic, rp.Partition)] = rp.Offset
		}
	}
	return out, nil
}

// committedOffsets returns a group's committed offsets, "topic-p" to offset.
func committedOffsets(ctx context.Context, cl *kgo.Client, group string) (map[string]int64, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if resp.ErrorCode != 0 {
		return nil, fmt.Errorf("OffsetFetch of %s: error %d", group, resp.ErrorCode)
	}
	out := map[string]int64{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode == 0 {
				out[fmt.Sprintf("%s-%d", rt.Topic, rp.Partition)] = rp.Offset
			}
		}
	}
	return out, nil
}

// laggingLSO names the partitions whose last stable offset is below the
// high watermark (an open transaction), among the outputs and
// __consumer_offsets; "" when none.
func laggingLSO(t *testing.T, addr string) string {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics := []string{"eos-out-kgo", "eos-out-sdk", "__consumer_offsets"}
	hw, err := listOffsets(ctx, cl, 0, topics...)
	if err != nil {
		return err.Error()
	}
	lso, err := listOffsets(ctx, cl, 1, topics...)
	if err != nil {
		return err.Error()
	}
	var lag []string
	for key, h := range hw {
		if lso[key] != h {
			lag = append(lag, fmt.Sprintf("%s (LSO %d, HW %d)", key, lso[key], h))
		}
	}
	return strings.Join(lag, ", ")
}

// eosStats counts what a run did, for its log.
type eosStats struct {
	mu sync.Mutex // guards n
	n  map[string]int
}

func (s *eosStats) add(what string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[what] += n
}

func (s *eosStats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.n)
}

// offsetMonitor polls the groups' committed offsets and remembers the first
// one that went back.
type offsetMonitor struct {
	addr   string
	groups []string
	mu     sync.Mutex // guards last and bad
	last   map[string]int64
	bad    string
}

func newOffsetMonitor(addr string, groups []string) *offsetMonitor {
	return &offsetMonitor{addr: addr, groups: groups, last: map[string]int64{}}
}

func (m *offsetMonitor) run(stop <-chan struct{}) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(m.addr), kgo.RetryTimeout(2*time.Second))
	if err != nil {
		m.fail(err.Error())
		return
	}
	defer cl.Close()
	for {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		for _, g := range m.groups {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			offs, err := committedOffsets(ctx, cl, g)
			cancel()
			if err != nil {
				continue // the broker may be restarting
			}
			m.mu.Lock()
			for tp, at := range offs {
				key := g + " " + tp
				if prev, ok := m.last[key]; ok && at < prev && m.bad == "" {
					m.bad = fmt.Sprintf("committed offset of %s went back from %d to %d", key, prev, at)
				}
				m.last[key] = max(m.last[key], at)
			}
			m.mu.Unlock()
		}
	}
}

func (m *offsetMonitor) fail(msg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bad == "" {
		m.bad = msg
	}
}

func (m *offsetMonitor) err() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bad
}
