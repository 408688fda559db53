package producer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
)

// Transactions. The user's goroutine drives the transaction state
// (txnState, under its mutex) and talks to the transaction coordinator; the
// sender goroutine adds partitions to the transaction before it produces to
// them (AddPartitionsToTxn) and owns the producer id and epoch.

// GroupMetadata identifies the consumer group member whose offsets
// SendOffsetsToTransaction commits; consumer.Consumer.GroupMetadata gives it.
type GroupMetadata = kafkit.GroupMetadata

// txnState is the client side of the transaction protocol.
type txnState struct {
	mu    chanMutex // serializes the transactional calls; guards ready and endSent
	ready bool      // InitTransactions succeeded
	// endSent is the EndTxn (commit or abort) sent for the current
	// transaction whose call failed: the coordinator may have applied it,
	// so only the same end may be tried again (Java's COMMITTING and
	// ABORTING states).
	endSent  *bool
	inTxn    atomic.Bool
	ending   atomic.Bool           // Commit or Abort running: Send is refused, as in Java
	abortErr atomic.Pointer[error] // first failure of a record in the current transaction
	// bumpEpoch is set by the sender when the broker lost our sequence
	// or a sent batch's outcome is unknown: that must not outlive the
	// transaction, so Abort gets a new epoch from InitProducerId (KIP-360)
	// before the next one.
	bumpEpoch atomic.Bool
	// started: a partition or a group's offsets were added to the
	// transaction, so the coordinator knows it; an empty one ends without
	// EndTxn, as in Java (the coordinator answers INVALID_TXN_STATE).
	started atomic.Bool
	// gate closes the window between Send's state check and its append:
	// Send holds it shared across both, Commit and Abort take it once
	// ending is set, so no record lands after their flush (Java re-checks
	// after Send's waits and holds EndTxn while any batch is incomplete).
	gate sync.RWMutex
}

// chanMutex is a mutex that can be acquired with a ctx; make(chanMutex, 1).
type chanMutex chan struct{}

func (m chanMutex) lock(ctx context.Context) error {
	select {
	case m <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m chanMutex) unlock() { <-m }

// transactional reports ErrNotTransactional for producers without
// transactional.id.
func (p *Producer) transactional() error {
	if p.s.TransactionalID == "" {
		return ErrNotTransactional
	}
	return p.fatalErr()
}

// InitTransactions registers transactional.id with its coordinator, fencing
// any earlier producer with the same id and completing (committing or
// aborting) its unfinished transaction. It must precede the first
// BeginTransaction.
func (p *Producer) InitTransactions(ctx context.Context) error {
	if err := p.transactional(); err != nil {
		return err
	}
	if err := p.txn.mu.lock(ctx); err != nil {
		return err
	}
	defer p.txn.mu.unlock()
	if p.txn.inTxn.Load() {
		return fmt.Errorf("%w: InitTransactions during a transaction", ErrTransactionState)
	}
	if err := p.renewTxnProducerID(ctx, false); err != nil {
		return err
	}
	p.txn.ready = true
	return nil
}

// renewTxnProducerID asks the transaction coordinator for the producer id
// and epoch and hands them to the sender. The epoch bump after an abort
// names the current id and epoch (KIP-360), so the coordinator bumps ours
// only if no newer instance fenced it; a first call names none.
func (p *Producer) renewTxnProducerID(ctx context.Context, bump bool) error {
	curID, curEpoch := int64(-1), int16(-1)
	if bump {
		var err error
		if curID, curEpoch, err = p.pidEpoch(ctx); err != nil {
			return err
		}
	}
	id, epoch, err := p.initProducerID(ctx, &p.s.TransactionalID, curID, curEpoch)
	if err != nil {
		return p.txnErr("InitProducerId", err)
	}
	return p.snd.call(ctx, func() { p.snd.setPID(id, epoch) })
}

// BeginTransaction starts a transaction; records sent until Commit or
// Abort belong to it. It does not talk to the broker.
func (p *Producer) BeginTransaction() error {
	if err := p.transactional(); err != nil {
		return err
	}
	_ = p.txn.mu.lock(context.Background())
	defer p.txn.mu.unlock()
	switch {
	case !p.txn.ready:
		return fmt.Errorf("%w: call InitTransactions first", ErrTransactionState)
	case p.txn.inTxn.Load():
		return fmt.Errorf("%w: a transaction is already in progress", ErrTransactionState)
	}
	p.txn.abortErr.Store(nil)
	p.txn.started.Store(false)
	p.txn.inTxn.Store(true)
	return nil
}

// txnCheckSend rejects a transactional Send outside a transaction or in one
// that must be aborted.
func (p *Producer) txnCheckSend() error {
	if p.s.TransactionalID == "" {
		return nil
	}
	return p.txnCheckInTxn()
}

// txnCheckInTxn is txnCheckSend for a transactional producer, out of line
// so that the check inlines into every Send.
func (p *Producer) txnCheckInTxn() error {
	if !p.txn.inTxn.Load() {
		return fmt.Errorf("%w: Send outside a transaction (call BeginTransaction)", ErrTransactionState)
	}
	if p.txn.ending.Load() {
		return fmt.Errorf("%w: Send while the transaction is being committed or aborted", ErrTransactionState)
	}
	if e := p.txn.abortErr.Load(); e != nil {
		return fmt.Errorf("%w: %w", ErrAbortableTransaction, *e)
	}
	return nil
}

// txnFailed records that the current transaction failed: it can then only
// be aborted, and its batches never sent are dropped (Java's
// abortUndrainedBatches): sending them would only make Commit and Abort
// wait for records nobody can commit. The drop runs on the sender before
// anything Commit or Abort asks of it later, so it cannot reach the next
// transaction.
func (p *Producer) txnFailed(err error) {
	if p.txn.inTxn.Load() && p.txn.abortErr.CompareAndSwap(nil, &err) {
		p.snd.post(func() { p.snd.dropUnsent(fmt.Errorf("%w: %w", ErrAbortableTransaction, err)) })
	}
}

// CommitTransaction flushes every record of the transaction and commits it.
// If a record failed, it returns an error wrapping ErrAbortableTransaction:
// the transaction must then be aborted. Fencing makes the producer fatal.
func (p *Producer) CommitTransaction(ctx context.Context) error {
	return p.endTransaction(ctx, true)
}

// AbortTransaction drops the transaction's records not yet sent (their
// callbacks get ErrAbortableTransaction), waits for those in flight, and
// aborts the transaction: consumers with isolation.level=read_committed
// never see its records.
func (p *Producer) AbortTransaction(ctx context.Context) error {
	return p.endTransaction(ctx, false)
}

var errTxnAborted = fmt.Errorf("%w: the transaction was aborted", ErrAbortableTransaction)

func (p *Producer) endTransaction(ctx context.Context, commit bool) error {
	if err := p.transactional(); err != nil {
		return err
	}
	if err := p.txn.mu.lock(ctx); err != nil {
		return err
	}
	defer p.txn.mu.unlock()
	if !p.txn.inTxn.Load() {
		return fmt.Errorf("%w: no transaction in progress", ErrTransactionState)
	}
	if sent := p.txn.endSent; sent != nil && *sent != commit {
		if *sent {
			return fmt.Errorf("%w: the transaction's commit was sent and may have been applied: call CommitTransaction again", ErrTransactionState)
		}
		return fmt.Errorf("%w: the transaction's abort was sent and may have been applied: call AbortTransaction again", ErrTransactionState)
	}
	p.txn.ending.Store(true)
	defer p.txn.ending.Store(false)
	p.txn.gate.Lock()
	p.txn.gate.Unlock() //nolint:staticcheck // waits for the Sends past their state check
	if e := p.txn.abortErr.Load(); commit && e != nil {
		return fmt.Errorf("%w: %w", ErrAbortableTransaction, *e)
	}
	if !commit {
		if err := p.snd.call(ctx, func() { p.snd.dropUnsent(errTxnAborted) }); err != nil {
			return err
		}
	}
	if err := p.Flush(ctx); err != nil {
		return err
	}
	if err := p.snd.settle(ctx); err != nil {
		return err
	}
	// An AddPartitionsToTxn still running (its batches were dropped by an
	// abort) must finish before EndTxn, or it would reach the coordinator
	// under the epoch EndTxn v5 retires and fence us.
	var adding chan struct{}
	if err := p.snd.call(ctx, func() { adding = p.snd.txnAddDone }); err != nil {
		return err
	}
	if adding != nil {
		if err := p.snd.await(ctx, adding); err != nil {
			return err // ErrClosed: the sender will not report it
		}
	}
	if e := p.txn.abortErr.Load(); commit && e != nil {
		return fmt.Errorf("%w: %w", ErrAbortableTransaction, *e)
	}
	if p.txn.started.Load() {
		p.txn.endSent = &commit
		if err := p.endTxn(ctx, commit); err != nil {
			return err
		}
		p.txn.started.Store(false)
	}
	if p.txn.bumpEpoch.Load() {
		if err := p.renewTxnProducerID(ctx, true); err != nil {
			return err
		}
		p.txn.bumpEpoch.Store(false)
	}
	if err := p.snd.call(ctx, func() {
		for _, pq := range p.acc.parts.Load().list {
			pq.addedToTxn = false
		}
	}); err != nil {
		return err
	}
	p.txn.inTxn.Store(false)
	p.txn.abortErr.Store(nil)
	p.txn.endSent = nil
	return nil
}

// pidEpoch reads the current producer id and epoch from the sender.
func (p *Producer) pidEpoch(ctx context.Context) (int64, int16, error) {
	var id int64
	var epoch int16
	err := p.snd.call(ctx, func() { id, epoch = p.snd.pid.ID, p.snd.pid.Epoch })
	return id, epoch, err
}

func (p *Producer) endTxn(ctx context.Context, commit bool) error {
	id, epoch, err := p.pidEpoch(ctx)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = p.s.TransactionalID, id, epoch, commit
	resp, err := p.coordinatorRequest(ctx, 1, p.s.TransactionalID, req, func(r kmsg.Response) error {
		return kerr.ErrorForCode(r.(*kmsg.EndTxnResponse).ErrorCode)
	})
	if err != nil {
		return p.txnErr("EndTxn", err)
	}
	// EndTxn v5 (KIP-890) bumps the epoch; sequences restart under it.
	if r := resp.(*kmsg.EndTxnResponse); r.Version >= 5 && r.ProducerID >= 0 {
		return p.snd.call(ctx, func() { p.snd.setPID(r.ProducerID, r.ProducerEpoch) })
	}
	return nil
}

// SendOffsetsToTransaction commits offsets (the next offset to read, per
// partition) for the consumer group in group as part of the current
// transaction: they become visible only if the transaction commits
// (consume-transform-produce). If it fails, the transaction can only be
// aborted (the error wraps ErrAbortableTransaction, or ErrFatal when the
// producer was fenced): committing outputs without their inputs' offsets
// would process the inputs twice.
func (p *Producer) SendOffsetsToTransaction(ctx context.Context, offsets map[kafkit.TopicPartition]int64, group GroupMetadata) error {
	if err := p.sendOffsets(ctx, offsets, group); err != nil {
		if !errors.Is(err, ErrFatal) && !errors.Is(err, ErrTransactionState) && !errors.Is(err, ErrNotTransactional) && !errors.Is(err, ErrAbortableTransaction) {
			p.txnFailed(err)
			err = fmt.Errorf("%w: %w", ErrAbortableTransaction, err)
		}
		return err
	}
	return nil
}

func (p *Producer) sendOffsets(ctx context.Context, offsets map[kafkit.TopicPartition]int64, group GroupMetadata) error {
	if err := p.transactional(); err != nil {
		return err
	}
	if len(offsets) == 0 {
		return nil // as Java: an empty poll adds nothing to the transaction
	}
	if err := p.txn.mu.lock(ctx); err != nil {
		return err
	}
	defer p.txn.mu.unlock()
	if !p.txn.inTxn.Load() {
		return fmt.Errorf("%w: SendOffsetsToTransaction outside a transaction", ErrTransactionState)
	}
	id, epoch, err := p.pidEpoch(ctx)
	if err != nil {
		return err
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = p.s.TransactionalID, id, epoch, group.GroupID
	if _, err := p.coordinatorRequest(ctx, 1, p.s.TransactionalID, add, func(r kmsg.Response) error {
		return kerr.ErrorForCode(r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode)
	}); err != nil {
		return p.txnErr("AddOffsetsToTxn", err)
	}
	p.txn.started.Store(true)
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = p.s.TransactionalID, group.GroupID, id, epoch
	commit.Generation, commit.MemberID, commit.InstanceID = group.GenerationID, group.MemberID, group.GroupInstanceID
	for tp, off := range offsets {
		ti := -1
		for i := range commit.Topics {
			if commit.Topics[i].Topic == tp.Topic {
				ti = i
			}
		}
		if ti < 0 {
			t := kmsg.NewTxnOffsetCommitRequestTopic()
			t.Topic = tp.Topic
			commit.Topics = append(commit.Topics, t)
			ti = len(commit.Topics) - 1
		}
		pt := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		pt.Partition, pt.Offset = tp.Partition, off
		commit.Topics[ti].Partitions = append(commit.Topics[ti].Partitions, pt)
	}
	// v6 names topics by id; v5 by name, which is what we have.
	if _, err := p.coordinatorRequest(ctx, 0, group.GroupID, capVersion(commit, 5), func(r kmsg.Response) error {
		for _, t := range r.(*kmsg.TxnOffsetCommitResponse).Topics {
			for _, pt := range t.Partitions {
				if err := kerr.ErrorForCode(pt.ErrorCode); err != nil {
					return fmt.Errorf("%s-%d: %w", t.Topic, pt.Partition, err)
				}
			}
		}
		return nil
	}); err != nil {
		return p.txnErr("TxnOffsetCommit", err)
	}
	return nil
}

// txnErr applies classify to a coordinator's error: a fatal one makes the
// producer fatal, an abortable one fails the transaction; everything is
// returned wrapped with the request's name.
func (p *Producer) txnErr(what string, err error) error {
	err = fmt.Errorf("%s: %w", what, err)
	switch classify(err, fromCoordinator, true) {
	case errFatal:
		p.setFatal(err)
		return p.fatalErr()
	case errAbortable:
		p.txnFailed(err)
		return fmt.Errorf("%w: %w", ErrAbortableTransaction, err)
	}
	return fmt.Errorf("producer: %w", err)
}

// coordinatorRequest sends req to the coordinator of key (keyType 0 group,
// 1 transaction), retrying retriable errors (including NOT_COORDINATOR and
// CONCURRENT_TRANSACTIONS) until ctx ends. check extracts the response's
// error.
func (p *Producer) coordinatorRequest(ctx context.Context, keyType int8, key string, req kmsg.Request, check func(kmsg.Response) error) (kmsg.Response, error) {
	bo := client.NewBackoff(p.s.RetryBackoff, p.s.RetryBackoffMax)
	for {
		coord, err := p.cl.FindCoordinator(ctx, keyType, key)
		var resp kmsg.Response
		if err == nil {
			if resp, err = p.cl.RequestBroker(ctx, coord, req); err == nil {
				if err = check(resp); err == nil {
					return resp, nil
				}
			}
		}
		if classify(err, fromCoordinator, true) != errRetriable {
			return nil, err
		}
		if serr := sleepCtx(ctx, bo.NextBackOff()); serr != nil {
			return nil, fmt.Errorf("%w (last error: %w)", serr, err)
		}
	}
}

// cappedRequest limits the version the client negotiates for a request:
// AddPartitionsToTxn v4+ is for brokers only, and TxnOffsetCommit v6 needs
// topic ids.
type cappedRequest struct {
	kmsg.Request
	max int16
}

func (c cappedRequest) MaxVersion() int16 { return min(c.max, c.Request.MaxVersion()) }

func capVersion(req kmsg.Request, max int16) kmsg.Request { return cappedRequest{req, max} }

// txnAllow reports whether the sender may produce to pq in the current
// transaction; if pq is not yet part of it, it queues pq for
// AddPartitionsToTxn and says no. Sender goroutine.
func (s *sender) txnAllow(pq *partQueue) bool {
	if s.s.TransactionalID == "" || pq.addedToTxn {
		return true
	}
	if s.txnToAdd == nil {
		s.txnToAdd = make(map[*partQueue]struct{})
	}
	s.txnToAdd[pq] = struct{}{}
	s.addPartitions()
	return false
}

// addPartitions sends one AddPartitionsToTxn for every partition waiting,
// in the background.
func (s *sender) addPartitions() {
	if s.txnAdding || len(s.txnToAdd) == 0 || !s.pidReady {
		return
	}
	s.txnAdding = true
	done := make(chan struct{})
	s.txnAddDone = done
	pqs := make([]*partQueue, 0, len(s.txnToAdd))
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = s.s.TransactionalID, s.pid.ID, s.pid.Epoch
	for pq := range s.txnToAdd {
		pqs = append(pqs, pq)
		ti := -1
		for i := range req.Topics {
			if req.Topics[i].Topic == pq.tp.Topic {
				ti = i
			}
		}
		if ti < 0 {
			t := kmsg.NewAddPartitionsToTxnRequestTopic()
			t.Topic = pq.tp.Topic
			req.Topics = append(req.Topics, t)
			ti = len(req.Topics) - 1
		}
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, pq.tp.Partition)
	}
	clear(s.txnToAdd)
	s.p.spawn(func() {
		errs := make(map[kafkit.TopicPartition]error)
		_, err := s.p.coordinatorRequest(s.ctx, 1, s.s.TransactionalID, capVersion(req, 3), func(r kmsg.Response) error {
			clear(errs)
			var retry error
			for _, t := range r.(*kmsg.AddPartitionsToTxnResponse).Topics {
				for _, pt := range t.Partitions {
					if err := kerr.ErrorForCode(pt.ErrorCode); err != nil {
						errs[kafkit.TopicPartition{Topic: t.Topic, Partition: pt.Partition}] = err
						if classify(err, fromCoordinator, true) == errRetriable {
							retry = err
						}
					}
				}
			}
			return retry
		})
		s.post(func() {
			s.txnAdding = false
			s.txnAddDone = nil
			defer close(done)
			for _, pq := range pqs {
				perr := errs[pq.tp]
				if perr == nil {
					perr = err
				}
				if perr == nil {
					pq.addedToTxn = true
					s.p.txn.started.Store(true)
					continue
				}
				if errors.Is(perr, kerr.OperationNotAttempted) {
					continue // another partition failed; this one is retried with the next batch
				}
				if classify(perr, fromCoordinator, true) == errFatal {
					s.p.setFatal(fmt.Errorf("AddPartitionsToTxn: %w", perr))
				}
				s.failPartition(pq, fmt.Errorf("AddPartitionsToTxn %s-%d: %w", pq.tp.Topic, pq.tp.Partition, perr))
			}
			s.addPartitions()
		})
	})
}

// failPartition fails every queued batch of pq.
func (s *sender) failPartition(pq *partQueue, err error) {
	pq.mu.Lock()
	batches := pq.batches
	pq.batches = nil
	pq.mu.Unlock()
	for _, b := range batches {
		s.fail(b, err)
	}
}

// dropUnsent fails every queued batch that was never sent (aborting a
// transaction); batches already sent (retries) stay to keep sequences whole.
func (s *sender) dropUnsent(err error) {
	clear(s.txnToAdd)
	for _, pq := range s.acc.parts.Load().list {
		var drop []*batch
		pq.mu.Lock()
		keep := pq.batches[:0]
		for _, b := range pq.batches {
			if b.raw == nil {
				b.full = true
				drop = append(drop, b)
			} else {
				keep = append(keep, b)
			}
		}
		clear(pq.batches[len(keep):])
		pq.batches = keep
		pq.mu.Unlock()
		for _, b := range drop {
			s.fail(b, err)
		}
	}
}
