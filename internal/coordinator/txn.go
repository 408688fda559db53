package coordinator

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnConfig holds the broker settings the transaction coordinator obeys.
// The zero value of a field means Kafka's default.
type TxnConfig struct {
	NumPartitions      int32         // transaction.state.log.num.partitions (default 50)
	MaxTimeout         time.Duration // transaction.max.timeout.ms (default 15 min)
	IDExpiration       time.Duration // transactional.id.expiration.ms (default 7 days)
	AbortCheckInterval time.Duration // transaction.abort.timed.out.transaction.cleanup.interval.ms (default 10 s)
	// ExpirationCheckInterval is
	// transaction.remove.expired.transaction.cleanup.interval.ms (default 1 h).
	ExpirationCheckInterval time.Duration
	// OffsetsPartitionFor maps a group to its __consumer_offsets partition
	// (AddOffsetsToTxn adds that partition to the transaction).
	OffsetsPartitionFor func(group string) int32
	// Owns, on a cluster, says whether this broker leads a partition of
	// __transaction_state: the transactional ids of the others get
	// NOT_COORDINATOR. Nil (a single node) owns every partition.
	Owns   func(partition int32) bool
	Logger *slog.Logger // nil discards
}

func (c TxnConfig) withDefaults() TxnConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.NumPartitions == 0 {
		c.NumPartitions = 50
	}
	def(&c.MaxTimeout, 15*time.Minute)
	def(&c.IDExpiration, 7*24*time.Hour)
	def(&c.AbortCheckInterval, 10*time.Second)
	def(&c.ExpirationCheckInterval, time.Hour)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem at once, each naming Kafka's key.
func (c TxnConfig) Validate() error {
	var errs []error
	if c.NumPartitions < 0 {
		errs = append(errs, fmt.Errorf("transaction.state.log.num.partitions must be at least 1, got %d", c.NumPartitions))
	}
	for key, d := range map[string]time.Duration{
		"transaction.max.timeout.ms": c.MaxTimeout, "transactional.id.expiration.ms": c.IDExpiration,
		"transaction.abort.timed.out.transaction.cleanup.interval.ms": c.AbortCheckInterval,
		"transaction.remove.expired.transaction.cleanup.interval.ms":  c.ExpirationCheckInterval,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %v", key, d))
		}
	}
	if c.OffsetsPartitionFor == nil {
		errs = append(errs, errors.New("transaction coordinator: OffsetsPartitionFor is required"))
	}
	return errors.Join(errs...)
}

// OffsetsTopic is the internal topic of committed offsets, whose partitions
// join a transaction through AddOffsetsToTxn.
const OffsetsTopic = "__consumer_offsets"

// TxnBackend is what the transaction coordinator needs from the broker.
type TxnBackend interface {
	// AppendTxnState appends records to a partition of __transaction_state.
	AppendTxnState(partition int32, recs []Record) error
	// WriteTxnMarker writes a commit or abort marker of the producer to a
	// partition, and for a __consumer_offsets partition makes the
	// producer's pending transactional offsets committed (or drops them).
	// coordinatorEpoch is the leader epoch of the transactional id's
	// __transaction_state partition when this coordinator loaded it: the
	// partition refuses it (TRANSACTION_COORDINATOR_FENCED) below the epoch
	// of the producer's last marker there, so a coordinator that was
	// replaced cannot end a transaction its successor has ended. A
	// partition that no longer exists is not an error. The markers of a
	// transaction are written concurrently.
	WriteTxnMarker(ctx context.Context, topic string, partition int32, producerID int64, epoch int16, coordinatorEpoch int32, commit bool) error
	// NewProducerID allocates a producer id never handed out before.
	NewProducerID() (int64, error)
}

// TxnCoordinator is the transaction coordinator: the state of every
// transactional id, persisted in __transaction_state. It is a
// mutex-guarded state machine rather than a loop goroutine. A request or
// timer that writes a transactional id's state or its markers marks the id
// busy (Kafka's pendingState) and releases the mutex while the write and
// the markers travel (on a cluster: a high watermark wait, a round trip to
// each partition's leader); other requests on that id get
// CONCURRENT_TRANSACTIONS meanwhile, as Kafka answers, and the other ids
// are served. EndTxn answers once the transaction is complete (Kafka's
// answers after its Prepare step and writes the markers behind it). Run
// drives the timers.
type TxnCoordinator struct {
	cfg     TxnConfig
	backend TxnBackend
	log     *slog.Logger

	// mu guards loaded, txns and every txnMeta. A step that writes
	// releases it with its txnMeta busy (see unlocked).
	mu sync.Mutex
	// loaded says, by partition of __transaction_state, whether its
	// transactional ids are here (see Load, LoadPartition); epochs are the
	// coordinator epochs they were loaded at.
	loaded []bool
	epochs []int32
	txns   map[string]*txnMeta

	// started wakes Run when a transaction starts, so its deadline is
	// taken into account.
	started chan struct{}
}

// txnMeta is one transactional id's state, as TxnMetadataValue stores it.
type txnMeta struct {
	id         string
	producerID int64
	epoch      int16
	// lastProducerID and lastEpoch are the id and epoch a producer had
	// when it asked for its own epoch bump (InitProducerId v3+, KIP-360), so
	// that its retry is recognized; -1 after any other bump.
	lastProducerID int64
	lastEpoch      int16
	timeout        time.Duration
	state          kmsg.TransactionState
	partitions     map[string]map[int32]bool
	started        time.Time // of the ongoing transaction
	updated        time.Time
	// busy is set while a request or timer works on the id with the
	// coordinator's lock released; busyTo is the state it moves to.
	busy   bool
	busyTo kmsg.TransactionState
}

// begin marks t busy for a change towards state to; the caller holds mu
// and calls end (under mu) when done.
func (t *txnMeta) begin(to kmsg.TransactionState) { t.busy, t.busyTo = true, to }

func (t *txnMeta) end() { t.busy = false }

// unlocked runs fn with mu released; the caller holds mu and has marked t
// busy, so no other request or timer changes t meanwhile. It reports
// whether t is still this coordinator's afterwards: an unload (or an
// unload and reload) of its partition while fn ran drops or replaces it.
func (c *TxnCoordinator) unlocked(t *txnMeta, fn func()) bool {
	c.mu.Unlock()
	fn()
	c.mu.Lock()
	return c.txns[t.id] == t
}

// NewTxnCoordinator returns a coordinator that answers
// COORDINATOR_LOAD_IN_PROGRESS until Load has finished.
func NewTxnCoordinator(cfg TxnConfig, backend TxnBackend) (*TxnCoordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("transaction coordinator config: %w", err)
	}
	if backend == nil {
		return nil, errors.New("transaction coordinator: nil backend")
	}
	cfg = cfg.withDefaults()
	return &TxnCoordinator{cfg: cfg, backend: backend, log: cfg.Logger, txns: make(map[string]*txnMeta),
		loaded: make([]bool, cfg.NumPartitions), epochs: make([]int32, cfg.NumPartitions), started: make(chan struct{}, 1)}, nil
}

// TxnPartitionFor is the __transaction_state partition of a transactional
// id: abs(javaHashCode(id)) % numPartitions, as Kafka computes it.
func (c *TxnCoordinator) TxnPartitionFor(transactionalID string) int32 {
	return PartitionFor(transactionalID, c.cfg.NumPartitions)
}

// Run aborts transactions past their transaction.timeout.ms and forgets
// transactional ids idle past transactional.id.expiration.ms, until ctx is
// done. The abort check runs at least every AbortCheckInterval, and also at
// the earliest deadline of the open transactions, so a transaction is
// aborted about when it times out (Kafka checks only on its 10 s tick).
func (c *TxnCoordinator) Run(ctx context.Context) {
	abort := time.NewTimer(c.cfg.AbortCheckInterval)
	defer abort.Stop()
	expire := time.NewTicker(c.cfg.ExpirationCheckInterval)
	defer expire.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-abort.C:
			abort.Reset(c.abortTimedOut(ctx, now))
		case <-c.started:
			abort.Reset(c.abortTimedOut(ctx, time.Now()))
		case now := <-expire.C:
			c.expireIDs(now)
		}
	}
}

// Load replays __transaction_state (the last record of a key wins, a
// tombstone removes it), serves every partition, and completes what a
// crash interrupted: a PrepareCommit or PrepareAbort gets its markers
// written again and is completed (retried by Run's timer if that fails);
// an Ongoing transaction resumes and times out later. Only a bad record
// fails the load.
func (c *TxnCoordinator) Load(ctx context.Context, recs iter.Seq2[Record, error]) error {
	txns, err := replayTxns(recs)
	if err != nil {
		return err
	}
	all := make([]int32, c.cfg.NumPartitions)
	for p := range all {
		all[p] = int32(p)
	}
	c.install(ctx, txns, all, 0)
	return nil
}

// LoadPartition is Load for one partition, on the broker that became its
// leader at leader epoch coordinatorEpoch (the epoch its markers carry);
// its transactional ids get COORDINATOR_LOAD_IN_PROGRESS until then.
func (c *TxnCoordinator) LoadPartition(ctx context.Context, partition, coordinatorEpoch int32, recs iter.Seq2[Record, error]) error {
	if partition < 0 || partition >= c.cfg.NumPartitions {
		return fmt.Errorf("loading __transaction_state-%d: %d partitions", partition, c.cfg.NumPartitions)
	}
	txns, err := replayTxns(recs)
	if err != nil {
		return fmt.Errorf("partition %d: %w", partition, err)
	}
	c.install(ctx, txns, []int32{partition}, coordinatorEpoch)
	return nil
}

// UnloadPartition forgets the transactional ids of a partition this broker
// no longer leads, once the request or timer holding the lock is done;
// their requests get NOT_COORDINATOR (through Owns) and the new leader
// loads them from its log.
func (c *TxnCoordinator) UnloadPartition(partition int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if partition < 0 || partition >= c.cfg.NumPartitions {
		return
	}
	c.loaded[partition] = false
	n := 0
	for id := range c.txns {
		if c.TxnPartitionFor(id) == partition {
			delete(c.txns, id)
			n++
		}
	}
	c.log.Info("unloaded transactions", "partition", partition, "transactional_ids", n)
}

func replayTxns(recs iter.Seq2[Record, error]) (map[string]*txnMeta, error) {
	txns := make(map[string]*txnMeta)
	for r, err := range recs {
		if err != nil {
			return nil, fmt.Errorf("loading __transaction_state: %w", err)
		}
		var k kmsg.TxnMetadataKey
		if err := k.ReadFrom(r.Key); err != nil {
			return nil, fmt.Errorf("loading __transaction_state: key: %w", err)
		}
		if r.Value == nil {
			delete(txns, k.TransactionalID)
			continue
		}
		var v kmsg.TxnMetadataValue
		if err := v.ReadFrom(r.Value); err != nil {
			return nil, fmt.Errorf("loading __transaction_state: value of %s: %w", k.TransactionalID, err)
		}
		txns[k.TransactionalID] = txnFromValue(k.TransactionalID, &v)
	}
	return txns, nil
}

// install serves the replayed ids of partitions and completes their
// prepared transactions.
func (c *TxnCoordinator) install(ctx context.Context, txns map[string]*txnMeta, partitions []int32, coordinatorEpoch int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, t := range txns {
		c.txns[id] = t
	}
	for _, p := range partitions {
		c.loaded[p], c.epochs[p] = true, coordinatorEpoch
	}
	for _, id := range slices.Sorted(maps.Keys(txns)) {
		if t := txns[id]; t.prepared() && c.txns[id] == t && !t.busy {
			c.log.Info("completing a transaction interrupted by a restart or a leadership change", "transactional_id", t.id, "state", t.state.String())
			c.retryComplete(ctx, t)
		}
	}
	c.log.Info("loaded transactions", "partitions", len(partitions), "transactional_ids", len(txns))
}

// unavailable is why this coordinator cannot serve a transactional id's
// request now: (on a cluster) another broker leads its partition, or its
// partition is still loading. The caller holds mu.
func (c *TxnCoordinator) unavailable(id string) *kerr.Error {
	p := c.TxnPartitionFor(id)
	switch {
	case c.cfg.Owns != nil && !c.cfg.Owns(p):
		return kerr.NotCoordinator
	case !c.loaded[p]:
		return kerr.CoordinatorLoadInProgress
	}
	return nil
}

// loading reports whether a partition this coordinator serves is still
// loading; the caller holds mu.
func (c *TxnCoordinator) loading() bool {
	for p, ok := range c.loaded {
		if !ok && (c.cfg.Owns == nil || c.cfg.Owns(int32(p))) {
			return true
		}
	}
	return false
}

func txnFromValue(id string, v *kmsg.TxnMetadataValue) *txnMeta {
	t := &txnMeta{id: id, producerID: v.ProducerID, epoch: v.ProducerEpoch, lastProducerID: -1, lastEpoch: -1,
		timeout: time.Duration(v.TimeoutMillis) * time.Millisecond, state: v.State,
		partitions: make(map[string]map[int32]bool), started: time.UnixMilli(v.StartTimestamp), updated: time.UnixMilli(v.LastUpdateTimestamp)}
	for _, tp := range v.Topics {
		for _, p := range tp.Partitions {
			t.add(tp.Topic, p)
		}
	}
	return t
}

func (t *txnMeta) prepared() bool {
	return t.state == kmsg.TransactionStatePrepareCommit || t.state == kmsg.TransactionStatePrepareAbort
}

// retryComplete completes a prepared transaction whose markers were not all
// written; on failure it stays prepared (its producer gets
// CONCURRENT_TRANSACTIONS) and the next timer check tries again. The caller
// holds mu, and t is not busy.
func (c *TxnCoordinator) retryComplete(ctx context.Context, t *txnMeta) {
	t.begin(t.state)
	defer t.end()
	if err := c.complete(ctx, t, t.state == kmsg.TransactionStatePrepareCommit); err != nil {
		c.log.Warn("completing a prepared transaction; will retry", "transactional_id", t.id, "err", err)
	}
}

func (t *txnMeta) add(topic string, partition int32) bool {
	ps := t.partitions[topic]
	if ps == nil {
		ps = make(map[int32]bool)
		t.partitions[topic] = ps
	}
	if ps[partition] {
		return false
	}
	ps[partition] = true
	return true
}

func (t *txnMeta) value() *kmsg.TxnMetadataValue {
	v := kmsg.NewTxnMetadataValue()
	v.ProducerID, v.ProducerEpoch, v.State = t.producerID, t.epoch, t.state
	v.TimeoutMillis = int32(t.timeout.Milliseconds())
	v.LastUpdateTimestamp, v.StartTimestamp = t.updated.UnixMilli(), t.started.UnixMilli()
	for _, topic := range slices.Sorted(maps.Keys(t.partitions)) {
		v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: topic, Partitions: slices.Sorted(maps.Keys(t.partitions[topic]))})
	}
	return &v
}

// persist writes t's state; the caller holds mu and changes its in-memory
// state only after persist succeeded (it passes the next state as t).
func (c *TxnCoordinator) persist(t *txnMeta) error {
	k := kmsg.TxnMetadataKey{Version: 0, TransactionalID: t.id}
	if err := c.backend.AppendTxnState(c.TxnPartitionFor(t.id), []Record{{Key: k.AppendTo(nil), Value: t.value().AppendTo(nil)}}); err != nil {
		c.log.Warn("writing __transaction_state", "transactional_id", t.id, "err", err)
		return err
	}
	return nil
}

// clone copies t so a step can be persisted before it takes effect.
func (t *txnMeta) clone() *txnMeta {
	n := *t
	n.partitions = make(map[string]map[int32]bool, len(t.partitions))
	for topic, ps := range t.partitions {
		n.partitions[topic] = maps.Clone(ps)
	}
	return &n
}

// commitStep persists next and makes it t's state; the caller holds mu,
// which is released meanwhile (t is busy). NOT_COORDINATOR: t's partition
// was unloaded meanwhile.
func (c *TxnCoordinator) commitStep(t, next *txnMeta) *kerr.Error {
	next.updated = time.Now()
	var err error
	if !c.unlocked(t, func() { err = c.persist(next) }) {
		return kerr.NotCoordinator
	}
	if err != nil {
		return appendFailed(err)
	}
	busy, to := t.busy, t.busyTo
	*t = *next
	t.busy, t.busyTo = busy, to
	return nil
}

// bumpEpoch moves next to a new epoch, or to a new producer id when the
// epoch is exhausted (Kafka's rotation at 32766: a producer never gets
// 32767, which only fencing uses).
func (c *TxnCoordinator) bumpEpoch(next *txnMeta) *kerr.Error {
	next.lastProducerID, next.lastEpoch = -1, -1
	if !exhausted(next.epoch) {
		next.epoch++
		return nil
	}
	id, err := c.backend.NewProducerID()
	if err != nil {
		c.log.Error("allocating a producer id", "err", err)
		return kerr.CoordinatorNotAvailable
	}
	next.producerID, next.epoch = id, 0
	return nil
}

func exhausted(epoch int16) bool { return epoch >= math.MaxInt16-1 }

// complete ends t's transaction: PrepareCommit/PrepareAbort persisted
// (unless t is in it already), a marker in every partition of the
// transaction, then CompleteCommit/CompleteAbort. The caller holds mu and
// has marked t busy; mu is released while the markers are written.
func (c *TxnCoordinator) complete(ctx context.Context, t *txnMeta, commit bool) error {
	prepare, done := kmsg.TransactionStatePrepareAbort, kmsg.TransactionStateCompleteAbort
	if commit {
		prepare, done = kmsg.TransactionStatePrepareCommit, kmsg.TransactionStateCompleteCommit
	}
	if t.state != prepare {
		next := t.clone()
		next.state = prepare
		if e := c.commitStep(t, next); e != nil {
			return e
		}
	}
	// The markers are written together, as Kafka's marker channel manager
	// sends them: one after the other, a transaction over many partitions
	// held the lock for a marker round trip and a high watermark wait per
	// partition (kgo's EndTxn timed out on a three-node cluster).
	type marker struct {
		topic     string
		partition int32
	}
	var markers []marker
	for _, topic := range slices.Sorted(maps.Keys(t.partitions)) {
		for _, p := range slices.Sorted(maps.Keys(t.partitions[topic])) {
			markers = append(markers, marker{topic, p})
		}
	}
	errs := make([]error, len(markers))
	producerID, epoch, coordinatorEpoch := t.producerID, t.epoch, c.epochs[c.TxnPartitionFor(t.id)]
	if !c.unlocked(t, func() {
		var wg sync.WaitGroup
		for i, m := range markers {
			wg.Go(func() {
				if err := c.backend.WriteTxnMarker(ctx, m.topic, m.partition, producerID, epoch, coordinatorEpoch, commit); err != nil {
					errs[i] = fmt.Errorf("marker for %s-%d: %w", m.topic, m.partition, err)
				}
			})
		}
		wg.Wait()
	}) {
		return kerr.NotCoordinator
	}
	for _, err := range errs {
		if err != nil {
			// The transaction stays prepared; the next Load (or a
			// retried EndTxn) writes the markers again.
			return err
		}
	}
	next := t.clone()
	next.state, next.partitions = done, make(map[string]map[int32]bool)
	if e := c.commitStep(t, next); e != nil {
		return e
	}
	return nil
}

// fenced is the error for a producer with an old epoch: PRODUCER_FENCED
// from the request version that knows it (KIP-588), INVALID_PRODUCER_EPOCH
// before.
func fenced(version, firstVersion int16) *kerr.Error {
	if version >= firstVersion {
		return kerr.ProducerFenced
	}
	return kerr.InvalidProducerEpoch
}

// InitProducerIDRequest is the transactional part of InitProducerId.
type InitProducerIDRequest struct {
	TransactionalID string
	Timeout         time.Duration
	// ProducerID and Epoch are the producer's current ones (v3+, KIP-360),
	// -1 when it has none.
	ProducerID int64
	Epoch      int16
	Version    int16
}

// InitProducerID hands a transactional producer its producer id and a new
// epoch, fencing every older instance: an ongoing transaction is aborted
// first, with markers of the new epoch.
func (c *TxnCoordinator) InitProducerID(ctx context.Context, req InitProducerIDRequest) (producerID int64, epoch int16, err *kerr.Error) {
	if req.Timeout <= 0 || req.Timeout > c.cfg.MaxTimeout {
		return -1, -1, kerr.InvalidTransactionTimeout
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.unavailable(req.TransactionalID); e != nil {
		return -1, -1, e
	}
	t := c.txns[req.TransactionalID]
	if t == nil {
		// A new id: it is busy in the map, without a producer id, until
		// its first state is written.
		t = &txnMeta{id: req.TransactionalID, producerID: -1, lastProducerID: -1, lastEpoch: -1, timeout: req.Timeout,
			state: kmsg.TransactionStateEmpty, partitions: make(map[string]map[int32]bool)}
		t.begin(kmsg.TransactionStateEmpty)
		defer t.end()
		c.txns[t.id] = t
		var id int64
		var err error
		if !c.unlocked(t, func() { id, err = c.backend.NewProducerID() }) {
			return -1, -1, kerr.NotCoordinator
		}
		if err != nil {
			delete(c.txns, t.id)
			c.log.Error("allocating a producer id", "err", err)
			return -1, -1, kerr.CoordinatorNotAvailable
		}
		next := t.clone()
		next.producerID = id
		if e := c.commitStep(t, next); e != nil {
			if c.txns[t.id] == t {
				delete(c.txns, t.id)
			}
			return -1, -1, e
		}
		return t.producerID, t.epoch, nil
	}
	if t.busy {
		return -1, -1, kerr.ConcurrentTransactions
	}
	if req.ProducerID >= 0 {
		switch {
		case req.ProducerID == t.producerID && req.Epoch == t.epoch:
		case req.ProducerID == t.lastProducerID && req.Epoch == t.lastEpoch:
			// A retry of a bump whose answer was lost.
			return t.producerID, t.epoch, nil
		default:
			return -1, -1, fenced(req.Version, 4)
		}
	}
	t.begin(kmsg.TransactionStateEmpty)
	defer t.end()
	switch t.state {
	case kmsg.TransactionStatePrepareCommit, kmsg.TransactionStatePrepareAbort:
		return -1, -1, kerr.ConcurrentTransactions
	case kmsg.TransactionStateOngoing:
		// Fence the previous instance: its transaction ends with markers
		// of the next epoch, which is then this producer's, unless that
		// is the last one (then the producer gets a new id).
		if e := c.abortFenced(ctx, t); e != nil {
			return -1, -1, e
		}
		next := t.clone()
		next.timeout = req.Timeout
		if exhausted(next.epoch) {
			if e := c.bumpEpoch(next); e != nil {
				return -1, -1, e
			}
		}
		if e := c.commitStep(t, next); e != nil {
			return -1, -1, e
		}
		return t.producerID, t.epoch, nil
	}
	next := t.clone()
	if e := c.bumpEpoch(next); e != nil {
		return -1, -1, e
	}
	if req.ProducerID >= 0 {
		next.lastProducerID, next.lastEpoch = req.ProducerID, req.Epoch
	}
	next.timeout, next.state, next.partitions = req.Timeout, kmsg.TransactionStateEmpty, make(map[string]map[int32]bool)
	if e := c.commitStep(t, next); e != nil {
		return -1, -1, e
	}
	return t.producerID, t.epoch, nil
}

// abortFenced aborts t's ongoing transaction under the next epoch of the
// same producer id, which fences the producer that ran it: the markers must
// carry the id of the transaction's data, so even epoch 32766 moves to
// 32767 here rather than to a new id (Kafka's prepareFenceProducerEpoch).
// The caller holds mu and has marked t busy.
func (c *TxnCoordinator) abortFenced(ctx context.Context, t *txnMeta) *kerr.Error {
	next := t.clone()
	next.lastProducerID, next.lastEpoch = -1, -1
	if next.epoch < math.MaxInt16 {
		next.epoch++
	}
	next.state = kmsg.TransactionStatePrepareAbort
	if e := c.commitStep(t, next); e != nil {
		return e
	}
	if err := c.complete(ctx, t, false); err != nil {
		c.log.Warn("aborting a fenced transaction", "transactional_id", t.id, "err", err)
		return kerr.ConcurrentTransactions // retriable: the abort is retried on the next attempt
	}
	return nil
}

// check validates a producer's request against its transactional id; the
// caller holds mu. A request that only reads the transaction (a
// verification) may pass while partitions are being added to it (Kafka
// lets it through a pending Ongoing state): it sees those already added.
func (c *TxnCoordinator) check(id string, producerID int64, epoch int16, version, fencedVersion int16, reads bool) (*txnMeta, *kerr.Error) {
	t, e := c.owner(id, producerID, epoch, version, fencedVersion)
	if e == nil && (t.prepared() || t.busy && !(reads && t.busyTo == kmsg.TransactionStateOngoing)) {
		return nil, kerr.ConcurrentTransactions
	}
	return t, e
}

// owner checks that the producer owns the transactional id at its current
// epoch; the caller holds mu.
func (c *TxnCoordinator) owner(id string, producerID int64, epoch int16, version, fencedVersion int16) (*txnMeta, *kerr.Error) {
	if e := c.unavailable(id); e != nil {
		return nil, e
	}
	t := c.txns[id]
	switch {
	case t == nil || t.producerID != producerID:
		return nil, kerr.InvalidProducerIDMapping
	case epoch != t.epoch:
		return nil, fenced(version, fencedVersion)
	}
	return t, nil
}

// AddPartitions adds partitions (topic → partitions) to the producer's
// transaction, starting one if none is ongoing (AddPartitionsToTxn;
// PRODUCER_FENCED from fencedVersion on).
func (c *TxnCoordinator) AddPartitions(id string, producerID int64, epoch int16, partitions map[string][]int32, version, fencedVersion int16) *kerr.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, e := c.check(id, producerID, epoch, version, fencedVersion, false)
	if e != nil {
		return e
	}
	next := t.clone()
	changed := false
	if t.state != kmsg.TransactionStateOngoing {
		next.state, next.started, changed = kmsg.TransactionStateOngoing, time.Now(), true
		next.partitions = make(map[string]map[int32]bool)
	}
	for topic, ps := range partitions {
		for _, p := range ps {
			changed = next.add(topic, p) || changed
		}
	}
	if !changed {
		return nil
	}
	starts := t.state != kmsg.TransactionStateOngoing
	t.begin(kmsg.TransactionStateOngoing)
	defer t.end()
	if e := c.commitStep(t, next); e != nil {
		return e
	}
	if starts {
		select {
		case c.started <- struct{}{}:
		default:
		}
	}
	return nil
}

// VerifyPartitions answers AddPartitionsToTxn's VerifyOnly (v4+, KIP-890):
// an error for the whole transaction, or, per partition, INVALID_TXN_STATE
// unless it is in the producer's transaction (nil when every one is).
func (c *TxnCoordinator) VerifyPartitions(id string, producerID int64, epoch int16, partitions map[string][]int32) (map[string]map[int32]*kerr.Error, *kerr.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, e := c.check(id, producerID, epoch, 4, 0, true)
	if e != nil {
		return nil, e
	}
	var out map[string]map[int32]*kerr.Error
	for topic, ps := range partitions {
		for _, p := range ps {
			if t.partitions[topic][p] {
				continue
			}
			if out == nil {
				out = make(map[string]map[int32]*kerr.Error)
			}
			if out[topic] == nil {
				out[topic] = make(map[int32]*kerr.Error)
			}
			out[topic][p] = kerr.InvalidTxnState
		}
	}
	return out, nil
}

// Verified runs write, a transactional produce to a partition, only if the
// partition is in the producer's ongoing transaction (KIP-890 part 1), and
// under the coordinator's lock, so no marker of that transaction comes
// between the check and the write. Otherwise it returns the coordinator's
// error: INVALID_TXN_STATE for a partition never added or a transaction
// already ended, PRODUCER_FENCED for an old epoch, INVALID_PRODUCER_ID_MAPPING,
// CONCURRENT_TRANSACTIONS while markers are written.
func (c *TxnCoordinator) Verified(id string, producerID int64, epoch int16, topic string, partition int32, write func()) *kerr.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, e := c.check(id, producerID, epoch, 4, 0, true)
	switch {
	case e != nil:
		return e
	case !t.partitions[topic][partition]:
		return kerr.InvalidTxnState
	}
	write()
	return nil
}

// AddOffsets adds the group's __consumer_offsets partition to the
// producer's transaction (AddOffsetsToTxn).
func (c *TxnCoordinator) AddOffsets(id string, producerID int64, epoch int16, group string, version int16) *kerr.Error {
	return c.AddPartitions(id, producerID, epoch, map[string][]int32{OffsetsTopic: {c.cfg.OffsetsPartitionFor(group)}}, version, 2)
}

// CommitOffsets handles the transactional side of a TxnOffsetCommit: the
// producer must own the transactional id at this epoch and have added the
// group's partition to its ongoing transaction with AddOffsetsToTxn; then
// write (which appends the offsets to __consumer_offsets) runs under the
// coordinator's lock, so the transaction cannot end between the check and
// the write.
func (c *TxnCoordinator) CommitOffsets(id string, producerID int64, epoch int16, group string, version int16, write func()) *kerr.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, e := c.check(id, producerID, epoch, version, 3, true)
	if e != nil {
		return e
	}
	if t.state != kmsg.TransactionStateOngoing || !t.partitions[OffsetsTopic][c.cfg.OffsetsPartitionFor(group)] {
		return kerr.InvalidTxnState
	}
	write()
	return nil
}

// EndTxn commits or aborts the producer's transaction and returns once every
// marker is written and the transaction is complete. Retrying the same
// end of a completed transaction succeeds.
func (c *TxnCoordinator) EndTxn(ctx context.Context, id string, producerID int64, epoch int16, commit bool, version int16) *kerr.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, e := c.owner(id, producerID, epoch, version, 2)
	if e != nil {
		return e
	}
	if t.busy {
		return kerr.ConcurrentTransactions
	}
	switch t.state {
	case kmsg.TransactionStatePrepareCommit:
		// Kafka: ending it the other way is invalid, the same way is
		// retried until the markers are written.
		if commit {
			return kerr.ConcurrentTransactions
		}
		return kerr.InvalidTxnState
	case kmsg.TransactionStatePrepareAbort:
		if !commit {
			return kerr.ConcurrentTransactions
		}
		return kerr.InvalidTxnState
	case kmsg.TransactionStateCompleteCommit:
		if commit {
			return nil
		}
		return kerr.InvalidTxnState
	case kmsg.TransactionStateCompleteAbort:
		if !commit {
			return nil
		}
		return kerr.InvalidTxnState
	case kmsg.TransactionStateOngoing:
	default:
		return kerr.InvalidTxnState
	}
	t.begin(kmsg.TransactionStatePrepareAbort)
	if commit {
		t.busyTo = kmsg.TransactionStatePrepareCommit
	}
	defer t.end()
	if err := c.complete(ctx, t, commit); err != nil {
		c.log.Warn("ending transaction", "transactional_id", id, "commit", commit, "err", err)
		var ke *kerr.Error
		if errors.As(err, &ke) {
			return ke
		}
		return kerr.ConcurrentTransactions // prepared; retried by the client or completed at the next load
	}
	return nil
}

// abortTimedOut aborts, with a bumped epoch, the ongoing transactions that
// outlived their timeout, retries completing prepared ones, and returns when
// to check next.
func (c *TxnCoordinator) abortTimedOut(ctx context.Context, now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.cfg.AbortCheckInterval
	if c.loading() {
		next = min(next, 100*time.Millisecond)
	}
	// A snapshot: each step below releases mu.
	for _, t := range slices.Collect(maps.Values(c.txns)) {
		if c.txns[t.id] != t {
			continue // unloaded meanwhile
		}
		if t.busy {
			if t.state == kmsg.TransactionStateOngoing {
				next = min(next, time.Second) // its deadline may pass meanwhile
			}
			continue
		}
		if t.prepared() {
			c.retryComplete(ctx, t)
			if t.prepared() {
				next = min(next, time.Second)
			}
			continue
		}
		if t.state != kmsg.TransactionStateOngoing {
			continue
		}
		if now.Sub(t.started) > t.timeout {
			c.log.Info("aborting a timed-out transaction", "transactional_id", t.id, "producer_id", t.producerID, "timeout", t.timeout)
			t.begin(kmsg.TransactionStatePrepareAbort)
			e := c.abortFenced(ctx, t)
			t.end()
			if e != nil {
				c.log.Warn("aborting a timed-out transaction", "transactional_id", t.id, "err", e)
			}
			continue
		}
		next = min(next, max(t.started.Add(t.timeout).Sub(now)+time.Millisecond, time.Millisecond))
	}
	return next
}

// expireIDs forgets transactional ids without an open transaction that saw
// no request for IDExpiration, writing their tombstones.
func (c *TxnCoordinator) expireIDs(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A snapshot: each tombstone's write releases mu.
	for _, t := range slices.Collect(maps.Values(c.txns)) {
		if c.txns[t.id] != t || t.busy {
			continue
		}
		switch t.state {
		case kmsg.TransactionStateEmpty, kmsg.TransactionStateCompleteCommit, kmsg.TransactionStateCompleteAbort:
		default:
			continue
		}
		if now.Sub(t.updated) < c.cfg.IDExpiration {
			continue
		}
		k := kmsg.TxnMetadataKey{Version: 0, TransactionalID: t.id}
		var err error
		t.begin(t.state)
		ours := c.unlocked(t, func() { err = c.backend.AppendTxnState(c.TxnPartitionFor(t.id), []Record{{Key: k.AppendTo(nil)}}) })
		t.end()
		if !ours {
			continue
		}
		if err != nil {
			c.log.Warn("expiring transactional id", "transactional_id", t.id, "err", err)
			continue
		}
		delete(c.txns, t.id)
		c.log.Info("expired transactional id", "transactional_id", t.id)
	}
}
