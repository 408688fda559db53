// Package producer is kafkit's Kafka producer: Send → interceptors →
// partitioner → RecordAccumulator (batches built in wire format) → one
// sender goroutine that pipelines Produce requests per broker, with Kafka's
// acks, retries, idempotence and transactions.
package producer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// Producer sends records to Kafka. It is safe for concurrent use.
type Producer struct {
	s    settings
	cl   *client.Client
	acc  *accumulator
	snd  *sender
	part Partitioner
	// cpart is part when it is a built-in partitioner that the producer
	// drives with what it knows of the cluster (see clusterPartitioner).
	cpart clusterPartitioner
	icpt  Interceptor // nil without interceptors

	ctx    context.Context // canceled by Close: ends background work
	cancel context.CancelFunc

	goMu    sync.Mutex // guards stopped and wg.Add, so nothing starts after Close
	stopped bool
	wg      sync.WaitGroup // the sender and its helper goroutines

	topicsMu  sync.Mutex                // serializes adding topics
	topics    sync.Map                  // topic name → *topicInfo
	lastTopic atomic.Pointer[topicInfo] // the topic of the latest Send
	clock     clock                     // record timestamps

	closed    atomic.Bool // Close started: Send fails with ErrClosed
	closeOnce sync.Once
	closeErr  error
	fatal     atomic.Pointer[error] // the error that made the producer unusable

	txn txnState
}

// topicInfo is what Send needs about a topic: its partition count, written
// by Send's metadata wait and the sender's refreshes.
type topicInfo struct {
	name       string
	partitions atomic.Int32            // 0 until known
	available  atomic.Pointer[[]int32] // the partitions with a leader, for sticky partitioning; nil until known
	// queues caches the accumulator's queue of each partition (nil until
	// first used), copy-on-write under Producer.topicsMu, so Send hashes
	// the topic name once.
	queues atomic.Pointer[[]*partQueue]
	sticky atomic.Pointer[stickyStint] // the sticky partition of keyless records (clusterPartitioner); nil until the first
}

// availablePartitions returns the partitions with a leader, nil while
// unknown.
func (ti *topicInfo) availablePartitions() []int32 {
	if a := ti.available.Load(); a != nil {
		return *a
	}
	return nil
}

// New validates cfg, connects to the cluster (bounded by max.block.ms) and
// starts the sender goroutine. A transactional producer must call
// InitTransactions before sending.
func New(cfg Config) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := cfg.settings()
	p := &Producer{s: s}
	p.txn.mu = make(chanMutex, 1)
	p.setPartitioner()
	if len(s.Interceptors) > 0 {
		p.icpt = ChainInterceptors(s.Interceptors...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.MaxBlock)
	defer cancel()
	cl, err := client.New(ctx, s.clientConfig())
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	p.cl = cl
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.snd = newSender(p.ctx, p)
	p.acc = newAccumulator(&p.s, p.snd.wake)
	p.snd.acc = p.acc
	p.spawn(p.snd.run)
	return p, nil
}

// setPartitioner sets the partitioner the settings name, or the default.
func (p *Producer) setPartitioner() {
	p.part = p.s.Partitioner
	if p.part == nil {
		p.part = NewDefaultPartitioner(p.s.BatchSize)
	}
	p.cpart, _ = p.part.(clusterPartitioner)
}

// spawn starts fn as a tracked goroutine unless the producer is closed.
func (p *Producer) spawn(fn func()) bool {
	p.goMu.Lock()
	defer p.goMu.Unlock()
	if p.stopped {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn()
	}()
	return true
}

// Send queues r for its topic and returns without waiting for the broker.
// If r.Partition is kafkit.AnyPartition the partitioner chooses; a zero
// r.Timestamp becomes the current time. cb (may be nil) runs exactly once
// with the outcome, after the interceptors' OnAck: on success r.Partition,
// r.Offset and r.Timestamp are filled in. Callbacks run on the producer's
// sender goroutine, in order per partition; they must not block, and must
// not call Flush, SendSync, Close or the transaction methods, which wait for
// that goroutine (a Send from a callback may block up to max.block.ms when
// buffer.memory is exhausted).
//
// Send blocks only while the topic's metadata is unknown or buffer.memory
// is exhausted, for at most max.block.ms (or until ctx ends), and then
// returns ErrMetadataTimeout or ErrBufferFull. With compression, a Send
// that fills a batch while GOMAXPROCS batches are compressing also waits for
// one of them and compresses its batch itself before it returns (as Java's
// producer compresses in send), which bounds how far Send's callers run
// ahead of compression. When Send returns an error, cb is not called. r and the bytes of its Key, Value and Headers must not be
// modified until cb runs: they are encoded when their batch is closed, not
// during Send (as kgo does; Java's serializer copies at send).
func (p *Producer) Send(ctx context.Context, r *kafkit.Record, cb func(r *kafkit.Record, err error)) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if err := p.fatalErr(); err != nil {
		return err
	}
	if err := p.txnCheckSend(); err != nil {
		return err
	}
	if p.icpt == nil {
		return p.send(ctx, r, pending{rec: r, cb: cb})
	}
	ictx := p.icpt.OnSend(ctx, r)
	err := p.send(ctx, r, pending{rec: r, cb: withOnAck(ictx, p.icpt, cb)})
	if err != nil {
		p.icpt.OnAck(ictx, r, err)
	}
	return err
}

func (p *Producer) send(ctx context.Context, r *kafkit.Record, pd pending) error {
	if r.Topic == "" {
		return fmt.Errorf("%w: empty topic", ErrInvalidRecord)
	}
	deadline := blockDeadline{maxBlock: p.s.MaxBlock}
	if size := estimate(r); size > p.s.MaxRequestSize {
		return fmt.Errorf("%w: the record is %d bytes when serialized, larger than max.request.size (%d)", ErrRecordTooLarge, size, p.s.MaxRequestSize)
	}
	ti := p.topic(r.Topic)
	n, err := p.partitions(ctx, ti, r.Topic, &deadline)
	if err != nil {
		return err
	}
	var stint *stickyStint // r's partition's, when r went to the sticky partition
	if r.Partition == kafkit.AnyPartition {
		limit, sticky := 0, false
		if p.cpart != nil {
			limit, sticky = p.cpart.stickyFor(r.Key)
		}
		if sticky {
			stint = ti.stint(limit, n)
			r.Partition = stint.partition
		} else {
			r.Partition = p.part.Partition(r.Topic, r.Key, len(r.Value), n)
		}
	}
	if r.Partition < 0 || r.Partition >= n {
		return fmt.Errorf("%w: partition %d is not in the range [0...%d) of topic %s", ErrInvalidRecord, r.Partition, n, r.Topic)
	}
	var ts int64
	if r.Timestamp.IsZero() {
		ts = p.clock.nowMilli()
		r.Timestamp = time.UnixMilli(ts) // Kafka keeps milliseconds
	} else {
		ts = r.Timestamp.UnixMilli()
	}
	r.TimestampType = kafkit.CreateTime
	pq := p.queueFor(ti, r.Topic, r.Partition)
	if p.s.TransactionalID != "" {
		// Waiting for metadata above may have outlasted the transaction.
		p.txn.gate.RLock()
		defer p.txn.gate.RUnlock()
		if err := p.txnCheckSend(); err != nil {
			return err
		}
	}
	return p.acc.append(ctx, &deadline, pq, pd, ts, recordbatch.PayloadLen(r.Key, r.Value, r.Headers), stint)
}

func (p *Producer) queueFor(ti *topicInfo, topic string, partition int32) *partQueue {
	if qs := ti.queues.Load(); qs != nil && int(partition) < len(*qs) && (*qs)[partition] != nil {
		return (*qs)[partition]
	}
	pq := p.acc.queue(kafkit.TopicPartition{Topic: topic, Partition: partition})
	p.topicsMu.Lock()
	defer p.topicsMu.Unlock()
	var old []*partQueue
	if o := ti.queues.Load(); o != nil {
		old = *o
	}
	qs := make([]*partQueue, max(len(old), int(partition)+1))
	copy(qs, old)
	qs[partition] = pq
	ti.queues.Store(&qs)
	return pq
}

// partitions returns topic's partition count, waiting for metadata until
// deadline when the topic is new.
func (p *Producer) partitions(ctx context.Context, ti *topicInfo, topic string, bd *blockDeadline) (int32, error) {
	if n := ti.partitions.Load(); n > 0 {
		return n, nil
	}
	deadline := bd.time()
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	bo := client.NewBackoff(p.s.RetryBackoff, p.s.RetryBackoffMax)
	var last error
	for {
		m, err := p.cl.Metadata(ctx, topic)
		if err == nil {
			t := m.Topics[topic]
			if err = t.Err; err == nil && len(t.Partitions) == 0 {
				err = kerr.UnknownTopicOrPartition
			}
			if err == nil {
				p.setTopicMeta(topic, &t)
				return int32(len(t.Partitions)), nil
			}
		}
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			if ctx.Err() != nil && time.Now().Before(deadline) {
				return 0, ctx.Err() // the caller's ctx ended first
			}
			return 0, fmt.Errorf("%w: topic %s not present in metadata after %d ms (last error: %v)", ErrMetadataTimeout, topic, p.s.MaxBlock.Milliseconds(), last)
		}
		last = err
		if !client.IsRetriable(err) && !errors.Is(err, kerr.UnknownTopicOrPartition) {
			return 0, fmt.Errorf("producer: metadata for %s: %w", topic, err)
		}
		p.cl.InvalidateMetadata(topic)
		_ = sleepCtx(ctx, bo.NextBackOff()) // ctx's end is reported at the top of the loop
	}
}

func (p *Producer) topic(name string) *topicInfo {
	if ti := p.lastTopic.Load(); ti != nil && ti.name == name {
		return ti // most producers write one topic: skip hashing its name
	}
	v, ok := p.topics.Load(name)
	if !ok {
		p.topicsMu.Lock()
		v, _ = p.topics.LoadOrStore(name, &topicInfo{name: name})
		p.topicsMu.Unlock()
	}
	ti := v.(*topicInfo)
	p.lastTopic.Store(ti)
	return ti
}

// setTopicMeta records topic's partition count and which partitions have a
// leader.
func (p *Producer) setTopicMeta(topic string, t *client.TopicMeta) {
	var avail []int32
	for _, pm := range t.Partitions {
		if pm.Leader >= 0 && pm.Err == nil {
			avail = append(avail, pm.ID)
		}
	}
	ti := p.topic(topic)
	ti.available.Store(&avail)
	ti.partitions.Store(int32(len(t.Partitions)))
}

func (p *Producer) topicList() []string {
	var out []string
	p.topics.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	slices.Sort(out)
	return out
}

// finishRecord reports one record's outcome to its callback (which, with
// interceptors, runs their OnAck first).
func (p *Producer) finishRecord(pd *pending, err error) {
	if pd.cb != nil {
		pd.cb(pd.rec, err)
	}
}

// SendSync sends r and waits for its acknowledgement (or failure), filling
// in r.Partition, r.Offset and r.Timestamp. ctx bounds only the wait for
// the send to be queued and acknowledged; a record already queued is still
// delivered after ctx ends.
func (p *Producer) SendSync(ctx context.Context, r *kafkit.Record) error {
	done := make(chan error, 1)
	if err := p.Send(ctx, r, func(_ *kafkit.Record, err error) { done <- err }); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush sends every record queued before the call immediately (ignoring
// linger.ms) and waits until each is acknowledged or failed, or ctx ends.
// Records sent concurrently with Flush may or may not be waited for.
func (p *Producer) Flush(ctx context.Context) error {
	p.acc.flushing.Add(1)
	defer p.acc.flushing.Add(-1)
	p.snd.wake()
	start := time.Now()
	for {
		// Batches split after MESSAGE_TOO_LARGE keep their creation time,
		// so each round also finds the parts of batches waited for before.
		waited := false
		for _, b := range p.acc.incompleteBatches() {
			if b.created.After(start) {
				continue
			}
			select {
			case <-b.done:
				continue // completed meanwhile: no reason for another round
			default:
			}
			waited = true
			select {
			case <-b.done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !waited {
			return nil
		}
	}
}

// Close shuts the producer down, in this order:
//  1. stop intake: Send fails with ErrClosed from now on;
//  2. flush: every queued record is sent at once (linger.ms ignored) and
//     acknowledged, until ctx ends;
//  3. if ctx ended first, records not yet sent fail with ErrClosed;
//  4. close the client connections: requests still in flight fail, and
//     their records with them;
//  5. stop the sender goroutine and wait for every goroutine the producer
//     started.
//
// Every record's callback has run when Close returns (a Send racing with
// Close either returns ErrClosed or its callback runs, possibly with
// ErrClosed). Close returns ctx's error if the flush did not finish; later
// calls return the first result.
func (p *Producer) Close(ctx context.Context) error {
	p.closeOnce.Do(func() { p.closeErr = p.close(ctx) })
	return p.closeErr
}

func (p *Producer) close(ctx context.Context) error {
	p.closed.Store(true)
	// A Send racing with the line above may still append after the flush;
	// the sender fails such records with ErrClosed when it stops.
	err := p.Flush(ctx)
	p.snd.post(func() { p.snd.stopping = true })
	p.cl.Close()
	<-p.snd.done
	p.goMu.Lock()
	p.stopped = true
	p.goMu.Unlock()
	p.cancel()
	p.wg.Wait()
	return err
}

func (p *Producer) setFatal(err error) {
	err = fmt.Errorf("%w: %w", ErrFatal, err)
	p.fatal.CompareAndSwap(nil, &err)
}

func (p *Producer) fatalErr() error {
	if e := p.fatal.Load(); e != nil {
		return *e
	}
	return nil
}

// initProducerID asks for a producer id (and epoch): from any broker for an
// idempotent producer, from the transaction coordinator (txnID non-nil)
// otherwise, retrying retriable errors until ctx ends. curID and curEpoch
// (-1 for none) name the id being bumped (KIP-360).
func (p *Producer) initProducerID(ctx context.Context, txnID *string, curID int64, curEpoch int16) (int64, int16, error) {
	bo := client.NewBackoff(p.s.RetryBackoff, p.s.RetryBackoffMax)
	for {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = txnID
		req.ProducerID, req.ProducerEpoch = curID, curEpoch
		req.TransactionTimeoutMillis = int32(p.s.TransactionTimeout.Milliseconds())
		var resp kmsg.Response
		var err error
		if txnID == nil {
			resp, err = p.cl.Request(ctx, req)
		} else {
			var coord int32
			if coord, err = p.cl.FindCoordinator(ctx, 1, *txnID); err == nil {
				resp, err = p.cl.RequestBroker(ctx, coord, req)
			}
		}
		if err == nil {
			r := resp.(*kmsg.InitProducerIDResponse)
			if err = kerr.ErrorForCode(r.ErrorCode); err == nil {
				return r.ProducerID, r.ProducerEpoch, nil
			}
		}
		if classify(err, fromCoordinator, txnID != nil) != errRetriable {
			return 0, 0, err
		}
		if serr := sleepCtx(ctx, bo.NextBackOff()); serr != nil {
			return 0, 0, fmt.Errorf("%w (last error: %w)", serr, err)
		}
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
