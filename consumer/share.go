package consumer

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// AcknowledgeType is what a share consumer says of a record it processed
// (Java's AcknowledgeType).
type AcknowledgeType int8

const (
	// Accept: processed; never delivered again.
	Accept AcknowledgeType = 1
	// Release: not processed; delivered again (with a higher delivery
	// count) until group.share.delivery.count.limit, then archived.
	Release AcknowledgeType = 2
	// Reject: unprocessable; never delivered again.
	Reject AcknowledgeType = 3
)

// gap marks an acquired offset with no record (a control record or a
// compacted one): acknowledged as such, never shown to the application.
const gap AcknowledgeType = 0

func (t AcknowledgeType) String() string {
	switch t {
	case Accept:
		return "ACCEPT"
	case Release:
		return "RELEASE"
	case Reject:
		return "REJECT"
	case gap:
		return "GAP"
	}
	return fmt.Sprintf("AcknowledgeType(%d)", int8(t))
}

// ShareRecord is a record delivered to a share consumer: the record and how
// many times the share group has delivered it (1 the first time).
type ShareRecord struct {
	kafkit.Record
	DeliveryCount int16
}

// Errors of the share consumer.
var (
	// ErrUnacknowledged is Poll in explicit mode while records of the
	// previous Poll are not acknowledged (Java's IllegalStateException).
	ErrUnacknowledged = errors.New("kafkit share consumer: records of the previous poll are not acknowledged (share.acknowledgement.mode=explicit)")
	// ErrImplicitMode is Acknowledge under share.acknowledgement.mode=implicit.
	ErrImplicitMode = errors.New("kafkit share consumer: Acknowledge needs share.acknowledgement.mode=explicit")
	// ErrNotDelivered is Acknowledge of a record this consumer does not
	// hold (not from the last Poll, or acknowledged already).
	ErrNotDelivered = errors.New("kafkit share consumer: record not delivered by the last poll or already acknowledged")
)

// tpid is a partition by topic id, as share requests name them.
type tpid struct {
	id        [16]byte
	partition int32
}

// shareSession is the consumer's share session with one broker.
type shareSession struct {
	epoch int32             // the next request's epoch; 0 opens a session
	parts map[tpid]struct{} // partitions the broker has in the session
}

// ShareConsumer is a member of a share group (KIP-932): it subscribes to
// topics, polls records that the broker acquired for it with a lock, and
// acknowledges each one (accept, release, reject), implicitly or
// explicitly, as Java's KafkaShareConsumer. Several members may consume
// one partition at once; a record is delivered again when released or when
// its lock (group.share.record.lock.duration.ms) runs out.
//
// Goroutines. Poll, Acknowledge, CommitSync, CommitAsync and Close are
// called from one goroutine, as Java's consumer is single-threaded; the
// acknowledgement callback runs inside them. A background goroutine keeps
// the membership (ShareGroupHeartbeat), and CommitAsync sends on one of
// its own.
type ShareConsumer struct {
	cfg      ShareConfig
	cl       *client.Client
	log      *slog.Logger
	memberID string
	ctx      context.Context // ends with Close
	cancel   context.CancelFunc
	bg       sync.WaitGroup

	// mu guards the membership the heartbeat goroutine keeps.
	mu        sync.Mutex
	topics    []string
	subChange chan struct{} // wakes the heartbeat loop after Subscribe
	epoch     int32
	assigned  map[[16]byte][]int32
	fatal     error // a group error no retry can fix
	closed    bool

	// sessMu serializes requests over the share sessions: Poll and commits
	// on the caller's goroutine, CommitAsync's on its own.
	sessMu   sync.Mutex
	sessions map[int32]*shareSession

	// Owned by the calling goroutine, under sessMu when a commit reads them.
	delivered map[tpid]map[int64]bool            // records of the last Poll not yet acknowledged
	acks      map[tpid]map[int64]AcknowledgeType // acknowledgements not yet sent
	names     map[[16]byte]string

	// cbMu guards results, acknowledgement outcomes waiting for the caller's
	// goroutine (CommitAsync completes on another).
	cbMu    sync.Mutex
	results []ackResult
}

type ackResult struct {
	tp      kafkit.TopicPartition
	offsets []int64
	err     error
}

// NewShare creates a share consumer of cfg.GroupID; Subscribe starts its
// membership. ctx bounds the first connection.
func NewShare(ctx context.Context, cfg ShareConfig) (*ShareConsumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cl, err := client.New(ctx, cfg.clientConfig())
	if err != nil {
		return nil, err
	}
	var id [16]byte
	rand.Read(id[:])
	c := &ShareConsumer{
		cfg: cfg, cl: cl, log: cfg.Logger.With("group", cfg.GroupID),
		// Kafka's Uuid.toString form, which the broker limits to 36 chars.
		memberID:  base64.RawURLEncoding.EncodeToString(id[:]),
		subChange: make(chan struct{}, 1),
		sessions:  map[int32]*shareSession{},
		delivered: map[tpid]map[int64]bool{},
		acks:      map[tpid]map[int64]AcknowledgeType{},
		names:     map[[16]byte]string{},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		c.heartbeatLoop()
	}()
	return c, nil
}

// MemberID is the id this member sends with every share request.
func (c *ShareConsumer) MemberID() string { return c.memberID }

// Subscribe replaces the subscription (ShareGroupHeartbeat carries it at
// the next heartbeat, which it triggers).
func (c *ShareConsumer) Subscribe(topics ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if len(topics) == 0 || slices.Contains(topics, "") {
		return ErrSubscription
	}
	c.topics = slices.Sorted(slices.Values(slices.Clone(topics)))
	select {
	case c.subChange <- struct{}{}:
	default:
	}
	return nil
}

// Subscription returns the subscribed topics.
func (c *ShareConsumer) Subscription() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.topics)
}

// heartbeatLoop keeps the membership: it joins with epoch 0, heartbeats
// every group.share.heartbeat.interval.ms (the broker's answer), takes the
// assignment the broker sends, and rejoins after UNKNOWN_MEMBER_ID or
// FENCED_MEMBER_EPOCH.
func (c *ShareConsumer) heartbeatLoop() {
	interval := c.cfg.RetryBackoff
	coordinator := int32(-1)
	var sentTopics []string
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.subChange:
		case <-time.After(interval):
		}
		c.mu.Lock()
		topics, epoch := c.topics, c.epoch
		c.mu.Unlock()
		if len(topics) == 0 {
			interval = time.Hour
			continue
		}
		if coordinator < 0 {
			id, err := c.cl.FindCoordinator(c.ctx, 0, c.cfg.GroupID)
			if err != nil {
				interval = c.cfg.RetryBackoff
				continue
			}
			coordinator = id
		}
		req := kmsg.NewPtrShareGroupHeartbeatRequest()
		req.GroupID, req.MemberID, req.MemberEpoch = c.cfg.GroupID, c.memberID, epoch
		if epoch == 0 || !slices.Equal(topics, sentTopics) {
			req.SubscribedTopicNames = topics
		}
		kresp, err := c.cl.RequestBroker(c.ctx, coordinator, req)
		if err != nil {
			coordinator, interval = -1, c.cfg.RetryBackoff
			continue
		}
		resp := kresp.(*kmsg.ShareGroupHeartbeatResponse)
		interval = time.Duration(resp.HeartbeatIntervalMillis) * time.Millisecond
		switch err := kerr.ErrorForCode(resp.ErrorCode); {
		case err == nil:
			sentTopics = req.SubscribedTopicNames
			if sentTopics == nil {
				sentTopics = topics
			}
			c.mu.Lock()
			c.epoch = resp.MemberEpoch
			if resp.Assignment != nil {
				c.assigned = map[[16]byte][]int32{}
				for _, tp := range resp.Assignment.TopicPartitions {
					c.assigned[tp.TopicID] = tp.Partitions
				}
			}
			c.mu.Unlock()
		case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.FencedMemberEpoch):
			c.log.Info("share group membership lost; rejoining", "err", err)
			c.mu.Lock()
			c.epoch, c.assigned = 0, nil
			c.mu.Unlock()
			interval = 0
		case errors.Is(err, kerr.NotCoordinator), errors.Is(err, kerr.CoordinatorNotAvailable), errors.Is(err, kerr.CoordinatorLoadInProgress):
			coordinator, interval = -1, c.cfg.RetryBackoff
		default:
			c.log.Error("share group heartbeat failed", "err", err)
			c.mu.Lock()
			c.fatal = fmt.Errorf("kafkit share consumer: heartbeat: %w", err)
			c.mu.Unlock()
			interval = c.cfg.RetryBackoffMax
		}
		if interval <= 0 {
			interval = time.Millisecond
		}
	}
}

// Poll returns the next records, at most max.poll.records per broker,
// waiting until some arrive or ctx ends (then it returns ctx's error). In
// implicit mode it first accepts every record the previous Poll returned;
// in explicit mode those must all have been acknowledged. Acknowledgements
// ride on the ShareFetch requests; their outcomes reach
// OnAcknowledgementCommit before Poll returns.
func (c *ShareConsumer) Poll(ctx context.Context) ([]*ShareRecord, error) {
	defer c.runCallbacks()
	if err := c.usable(); err != nil {
		return nil, err
	}
	if err := c.settleDelivered(); err != nil {
		return nil, err
	}
	c.sessMu.Lock()
	defer c.sessMu.Unlock()
	bo := client.NewBackoff(c.cfg.RetryBackoff, c.cfg.RetryBackoffMax)
	for {
		recs, err := c.fetchRound(ctx)
		if len(recs) > 0 {
			return recs, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := c.usable(); err != nil {
			return nil, err
		}
		if err != nil {
			c.log.Debug("share fetch failed; retrying", "err", err)
			select {
			case <-time.After(bo.NextBackOff()):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
}

func (c *ShareConsumer) usable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	return c.fatal
}

// settleDelivered applies the acknowledgement mode to the last Poll's
// records: implicit accepts those not acknowledged, explicit requires that
// none is left.
func (c *ShareConsumer) settleDelivered() error {
	c.sessMu.Lock()
	defer c.sessMu.Unlock()
	for tp, offs := range c.delivered {
		if len(offs) > 0 && c.cfg.AcknowledgementMode == AcknowledgeExplicit {
			return ErrUnacknowledged
		}
		for off := range offs {
			c.ackLocked(tp, off, Accept)
		}
	}
	clear(c.delivered)
	return nil
}

// Acknowledge records what became of rec (explicit mode): Accept, Release
// or Reject. It is sent with the next Poll, CommitSync, CommitAsync or
// Close. Each record of a Poll is acknowledged once.
func (c *ShareConsumer) Acknowledge(rec *ShareRecord, t AcknowledgeType) error {
	if c.cfg.AcknowledgementMode != AcknowledgeExplicit {
		return ErrImplicitMode
	}
	if t != Accept && t != Release && t != Reject {
		return fmt.Errorf("kafkit share consumer: unknown acknowledge type %v", t)
	}
	c.sessMu.Lock()
	defer c.sessMu.Unlock()
	tp, ok := c.tpOf(rec)
	if !ok || !c.delivered[tp][rec.Offset] {
		return ErrNotDelivered
	}
	delete(c.delivered[tp], rec.Offset)
	c.ackLocked(tp, rec.Offset, t)
	return nil
}

func (c *ShareConsumer) tpOf(rec *ShareRecord) (tpid, bool) {
	for id, name := range c.names {
		if name == rec.Topic {
			return tpid{id, rec.Partition}, true
		}
	}
	return tpid{}, false
}

func (c *ShareConsumer) ackLocked(tp tpid, off int64, t AcknowledgeType) {
	m := c.acks[tp]
	if m == nil {
		m = map[int64]AcknowledgeType{}
		c.acks[tp] = m
	}
	m[off] = t
}

// target is what one broker gets in a share request.
type target struct {
	broker int32
	parts  []tpid // assigned partitions it leads
}

// targets groups the assignment by leader and resolves topic names; acks
// for partitions no longer assigned still go to their leader.
func (c *ShareConsumer) targets(ctx context.Context) (map[int32]*target, error) {
	c.mu.Lock()
	assigned := maps.Clone(c.assigned)
	c.mu.Unlock()
	ids := map[[16]byte]bool{}
	for id := range assigned {
		ids[id] = true
	}
	for tp := range c.acks {
		ids[tp.id] = true
	}
	out := map[int32]*target{}
	if len(ids) == 0 {
		return out, nil
	}
	md, err := c.cl.Metadata(ctx)
	if err != nil {
		return nil, err
	}
	leaders := map[tpid]int32{}
	for _, tm := range md.Topics {
		if !ids[tm.ID] {
			continue
		}
		c.names[tm.ID] = tm.Name
		for _, pm := range tm.Partitions {
			leaders[tpid{tm.ID, pm.ID}] = pm.Leader
		}
	}
	add := func(tp tpid, assignedNow bool) {
		leader, ok := leaders[tp]
		if !ok || leader < 0 {
			return
		}
		t := out[leader]
		if t == nil {
			t = &target{broker: leader}
			out[leader] = t
		}
		if assignedNow {
			t.parts = append(t.parts, tp)
		}
	}
	for id, ps := range assigned {
		for _, p := range ps {
			add(tpid{id, p}, true)
		}
	}
	for tp := range c.acks {
		add(tp, false)
	}
	return out, nil
}

// takeAcks removes the pending acknowledgements of the partitions led by
// broker and returns them.
func (c *ShareConsumer) takeAcks(broker int32, leaders map[int32]*target) map[tpid]map[int64]AcknowledgeType {
	out := map[tpid]map[int64]AcknowledgeType{}
	for tp, m := range c.acks {
		if len(m) == 0 {
			delete(c.acks, tp)
			continue
		}
		if leaderOf(tp, leaders) == broker {
			out[tp] = m
			delete(c.acks, tp)
		}
	}
	return out
}

func leaderOf(tp tpid, leaders map[int32]*target) int32 {
	for b, t := range leaders {
		if slices.Contains(t.parts, tp) {
			return b
		}
	}
	if len(leaders) == 1 {
		for b := range leaders {
			return b
		}
	}
	return -1
}

// ackBatches encodes one partition's acknowledgements as ranges of
// consecutive offsets, one type per offset (one for the range when all
// agree).
func ackBatches(m map[int64]AcknowledgeType) (first, last []int64, types [][]int8) {
	offs := slices.Sorted(maps.Keys(m))
	for i, off := range offs {
		n := len(first)
		if i > 0 && off == offs[i-1]+1 {
			last[n-1] = off
			types[n-1] = append(types[n-1], int8(m[off]))
			continue
		}
		first, last, types = append(first, off), append(last, off), append(types, []int8{int8(m[off])})
	}
	for i, ts := range types {
		if len(ts) > 1 && !slices.ContainsFunc(ts, func(t int8) bool { return t != ts[0] }) {
			types[i] = ts[:1]
		}
	}
	return first, last, types
}

// fetchRound sends one ShareFetch to each leader of the assignment (with
// the acknowledgements for its partitions) and decodes what they acquired.
func (c *ShareConsumer) fetchRound(ctx context.Context) ([]*ShareRecord, error) {
	leaders, err := c.targets(ctx)
	if err != nil {
		return nil, err
	}
	if len(leaders) == 0 {
		select {
		case <-time.After(c.cfg.FetchMaxWait):
		case <-ctx.Done():
		}
		return nil, nil
	}
	type answer struct {
		t    *target
		req  *kmsg.ShareFetchRequest
		acks map[tpid]map[int64]AcknowledgeType
		resp *kmsg.ShareFetchResponse
		err  error
	}
	answers := make([]answer, 0, len(leaders))
	for _, b := range slices.Sorted(maps.Keys(leaders)) {
		t := leaders[b]
		acks := c.takeAcks(b, leaders)
		if s := c.sessions[b]; s == nil || s.epoch == 0 {
			// The records were acquired in a session the broker dropped (or
			// is about to: this fetch opens the next one, which releases
			// them), and Kafka refuses acknowledgements in an opening
			// fetch: they fail, and the records come back.
			c.failAcks(acks, kerr.ShareSessionNotFound)
			acks = nil
		}
		answers = append(answers, answer{t: t, acks: acks, req: c.shareFetchRequest(t, acks)})
	}
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func(a *answer) {
			defer wg.Done()
			rctx := ctx
			if len(a.acks) > 0 {
				// Acknowledgements once sent take effect whether or not
				// the caller still waits: their outcome must come back, or
				// an acknowledgement the broker applied would be reported
				// failed. The request (a long poll of at most
				// fetch.max.wait.ms) is bounded by request.timeout.ms.
				var cancel context.CancelFunc
				rctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), c.cfg.FetchMaxWait+c.cfg.RequestTimeout)
				defer cancel()
			}
			kresp, err := c.cl.RequestBroker(rctx, a.t.broker, a.req)
			a.err = err
			if err == nil {
				a.resp = kresp.(*kmsg.ShareFetchResponse)
			}
		}(&answers[i])
	}
	wg.Wait()
	var recs []*ShareRecord
	var errs []error
	for _, a := range answers {
		var code int16
		if a.resp != nil {
			code = a.resp.ErrorCode
		}
		if err := c.sessionAnswer(a.t.broker, a.req.ShareSessionEpoch, a.err, code); err != nil {
			c.failAcks(a.acks, err)
			errs = append(errs, err)
			continue
		}
		s := c.sessions[a.t.broker]
		for _, rt := range a.req.Topics {
			for _, rp := range rt.Partitions {
				s.parts[tpid{rt.TopicID, rp.Partition}] = struct{}{}
			}
		}
		for _, f := range a.req.ForgottenTopicsData {
			for _, p := range f.Partitions {
				delete(s.parts, tpid{f.TopicID, p})
			}
		}
		acked := map[tpid]bool{}
		for _, rt := range a.resp.Topics {
			for i := range rt.Partitions {
				rp := &rt.Partitions[i]
				tp := tpid{rt.TopicID, rp.Partition}
				if m, ok := a.acks[tp]; ok {
					acked[tp] = true
					c.report(tp, m, kerr.ErrorForCode(rp.AcknowledgeErrorCode))
				}
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					errs = append(errs, err)
					c.cl.InvalidateMetadata(c.names[tp.id])
					continue
				}
				recs = append(recs, c.decode(tp, rp)...)
			}
		}
		for tp, m := range a.acks {
			if !acked[tp] {
				c.report(tp, m, nil) // a partition the broker did not name took them without error
			}
		}
	}
	return recs, errors.Join(errs...)
}

// shareFetchRequest builds the broker's next ShareFetch: a full one (epoch
// 0) when there is no session, else the changes since the last.
func (c *ShareConsumer) shareFetchRequest(t *target, acks map[tpid]map[int64]AcknowledgeType) *kmsg.ShareFetchRequest {
	s := c.sessions[t.broker]
	if s == nil {
		s = &shareSession{parts: map[tpid]struct{}{}}
		c.sessions[t.broker] = s
	}
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &c.cfg.GroupID, &c.memberID, s.epoch
	req.MaxWaitMillis = int32(c.cfg.FetchMaxWait / time.Millisecond)
	req.MinBytes, req.MaxBytes = c.cfg.FetchMinBytes, c.cfg.FetchMaxBytes
	req.MaxRecords, req.BatchSize = int32(c.cfg.MaxPollRecords), int32(c.cfg.MaxPollRecords)
	parts := map[tpid]bool{}
	for _, tp := range t.parts {
		if _, in := s.parts[tp]; !in || s.epoch == 0 {
			parts[tp] = true
		}
	}
	for tp := range acks {
		parts[tp] = true
	}
	for _, g := range byTopic(slices.Collect(maps.Keys(parts))) {
		rt := kmsg.NewShareFetchRequestTopic()
		rt.TopicID = g[0].id
		for _, tp := range g {
			rp := kmsg.NewShareFetchRequestTopicPartition()
			rp.Partition = tp.partition
			first, last, types := ackBatches(acks[tp])
			for j := range first {
				rp.AcknowledgementBatches = append(rp.AcknowledgementBatches, kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{FirstOffset: first[j], LastOffset: last[j], AcknowledgeTypes: types[j]})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	if s.epoch != 0 {
		for tp := range s.parts {
			if !slices.Contains(t.parts, tp) && !parts[tp] {
				req.ForgottenTopicsData = append(req.ForgottenTopicsData, kmsg.ShareFetchRequestForgottenTopicsData{TopicID: tp.id, Partitions: []int32{tp.partition}})
			}
		}
	}
	return req
}

// byTopic sorts partitions and groups them by topic, as share requests
// list them.
func byTopic(tps []tpid) [][]tpid {
	slices.SortFunc(tps, compareTPID)
	var out [][]tpid
	for i, tp := range tps {
		if i == 0 || tp.id != tps[i-1].id {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], tp)
	}
	return out
}

func compareTPID(a, b tpid) int {
	if c := slices.Compare(a.id[:], b.id[:]); c != 0 {
		return c
	}
	return int(a.partition - b.partition)
}

// sessionAnswer advances the broker's share session after a request with
// epoch, or resets it (the next request opens a new one) when the request
// failed or the broker no longer knows it.
func (c *ShareConsumer) sessionAnswer(broker, epoch int32, err error, code int16) error {
	s := c.sessions[broker]
	if err == nil {
		err = kerr.ErrorForCode(code)
	}
	if err != nil {
		s.epoch, s.parts = 0, map[tpid]struct{}{}
		return err
	}
	s.epoch = epoch + 1
	if epoch == -1 {
		delete(c.sessions, broker)
	}
	return nil
}

// decode turns a partition's batches into the records acquired for us;
// acquired offsets without a record are acknowledged as gaps.
func (c *ShareConsumer) decode(tp tpid, rp *kmsg.ShareFetchResponseTopicPartition) []*ShareRecord {
	if len(rp.AcquiredRecords) == 0 {
		return nil
	}
	count := map[int64]int16{}
	for _, ar := range rp.AcquiredRecords {
		for off := ar.FirstOffset; off <= ar.LastOffset; off++ {
			count[off] = ar.DeliveryCount
		}
	}
	topic := c.names[tp.id]
	var out []*ShareRecord
	rd := recordbatch.NewReader(rp.Records, recordbatch.ReadOptions{VerifyCRC: true, Topic: topic, Partition: tp.partition})
	var batch recordbatch.Batch
	for rd.Next(&batch) {
		if batch.Attributes.Control() {
			continue
		}
		for _, r := range batch.Records {
			dc, ok := count[r.Offset]
			if !ok {
				continue
			}
			delete(count, r.Offset)
			rec := &ShareRecord{Record: r, DeliveryCount: dc}
			// Keys, values and headers alias the response: copy them.
			rec.Key, rec.Value = slices.Clone(r.Key), slices.Clone(r.Value)
			rec.Headers = slices.Clone(r.Headers)
			for i := range rec.Headers {
				rec.Headers[i].Value = slices.Clone(rec.Headers[i].Value)
			}
			out = append(out, rec)
			if c.delivered[tp] == nil {
				c.delivered[tp] = map[int64]bool{}
			}
			c.delivered[tp][r.Offset] = true
		}
	}
	if err := rd.Err(); err != nil {
		c.log.Warn("share fetch: undecodable records released", "topic", topic, "partition", tp.partition, "err", err)
		for off := range count {
			c.ackLocked(tp, off, Release)
		}
		return out
	}
	for off := range count {
		c.ackLocked(tp, off, gap)
	}
	return out
}

// report queues an acknowledgement outcome for the callback.
func (c *ShareConsumer) report(tp tpid, m map[int64]AcknowledgeType, err error) {
	var offs []int64
	for off, t := range m {
		if t != gap {
			offs = append(offs, off)
		}
	}
	if len(offs) == 0 {
		return
	}
	slices.Sort(offs)
	c.cbMu.Lock()
	c.results = append(c.results, ackResult{tp: kafkit.TopicPartition{Topic: c.names[tp.id], Partition: tp.partition}, offsets: offs, err: err})
	c.cbMu.Unlock()
}

func (c *ShareConsumer) failAcks(acks map[tpid]map[int64]AcknowledgeType, err error) {
	for tp, m := range acks {
		c.report(tp, m, err)
	}
}

// runCallbacks hands queued outcomes to OnAcknowledgementCommit.
func (c *ShareConsumer) runCallbacks() {
	c.cbMu.Lock()
	rs := c.results
	c.results = nil
	c.cbMu.Unlock()
	if c.cfg.OnAcknowledgementCommit == nil {
		return
	}
	for _, r := range rs {
		c.cfg.OnAcknowledgementCommit(r.tp, r.offsets, r.err)
	}
}

// CommitSync sends the pending acknowledgements (in implicit mode, first
// accepting every record the last Poll returned) with ShareAcknowledge and
// waits for the answers: the error of each partition, nil where they took
// effect. It returns ctx's error if ctx ends first.
func (c *ShareConsumer) CommitSync(ctx context.Context) (map[kafkit.TopicPartition]error, error) {
	defer c.runCallbacks()
	if err := c.usable(); err != nil {
		return nil, err
	}
	if c.cfg.AcknowledgementMode == AcknowledgeImplicit {
		if err := c.settleDelivered(); err != nil {
			return nil, err
		}
	}
	c.sessMu.Lock()
	defer c.sessMu.Unlock()
	return c.commitLocked(ctx, false)
}

// CommitAsync is CommitSync without waiting: the outcomes reach
// OnAcknowledgementCommit during a later Poll, CommitSync or Close.
func (c *ShareConsumer) CommitAsync() {
	if c.usable() != nil {
		return
	}
	if c.cfg.AcknowledgementMode == AcknowledgeImplicit && c.settleDelivered() != nil {
		return
	}
	c.sessMu.Lock()
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer c.sessMu.Unlock()
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.DefaultAPITimeout)
		defer cancel()
		c.commitLocked(ctx, false)
	}()
}

// commitLocked sends the pending acknowledgements, one ShareAcknowledge per
// leader; final closes the sessions (epoch -1), which releases whatever
// the member still holds.
func (c *ShareConsumer) commitLocked(ctx context.Context, final bool) (map[kafkit.TopicPartition]error, error) {
	leaders, err := c.targets(ctx)
	if err != nil {
		return nil, err
	}
	out := map[kafkit.TopicPartition]error{}
	for _, b := range slices.Sorted(maps.Keys(leaders)) {
		acks := c.takeAcks(b, leaders)
		s := c.sessions[b]
		if s == nil || s.epoch == 0 {
			// No session: the records were acquired in one the broker
			// dropped, and its locks decide their fate now.
			for tp, m := range acks {
				c.report(tp, m, kerr.ShareSessionNotFound)
				out[kafkit.TopicPartition{Topic: c.names[tp.id], Partition: tp.partition}] = kerr.ShareSessionNotFound
			}
			continue
		}
		if len(acks) == 0 && !final {
			continue
		}
		req := kmsg.NewPtrShareAcknowledgeRequest()
		req.GroupID, req.MemberID, req.ShareSessionEpoch = &c.cfg.GroupID, &c.memberID, s.epoch
		if final {
			req.ShareSessionEpoch = -1
		}
		for _, g := range byTopic(slices.Collect(maps.Keys(acks))) {
			rt := kmsg.NewShareAcknowledgeRequestTopic()
			rt.TopicID = g[0].id
			for _, tp := range g {
				rp := kmsg.NewShareAcknowledgeRequestTopicPartition()
				rp.Partition = tp.partition
				first, last, types := ackBatches(acks[tp])
				for j := range first {
					rp.AcknowledgementBatches = append(rp.AcknowledgementBatches, kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{FirstOffset: first[j], LastOffset: last[j], AcknowledgeTypes: types[j]})
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		kresp, rerr := c.cl.RequestBroker(ctx, b, req)
		var resp *kmsg.ShareAcknowledgeResponse
		var code int16
		if rerr == nil {
			resp = kresp.(*kmsg.ShareAcknowledgeResponse)
			code = resp.ErrorCode
		}
		if serr := c.sessionAnswer(b, req.ShareSessionEpoch, rerr, code); serr != nil {
			for tp, m := range acks {
				c.report(tp, m, serr)
				out[kafkit.TopicPartition{Topic: c.names[tp.id], Partition: tp.partition}] = serr
			}
			continue
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				tp := tpid{rt.TopicID, rp.Partition}
				err := kerr.ErrorForCode(rp.ErrorCode)
				if m, ok := acks[tp]; ok {
					c.report(tp, m, err)
					delete(acks, tp)
				}
				out[kafkit.TopicPartition{Topic: c.names[tp.id], Partition: tp.partition}] = err
			}
		}
		for tp, m := range acks {
			c.report(tp, m, nil)
			out[kafkit.TopicPartition{Topic: c.names[tp.id], Partition: tp.partition}] = nil
		}
	}
	return out, ctx.Err()
}

// Close settles the last Poll's records (implicit: accepted; explicit:
// those not acknowledged are released), sends the pending
// acknowledgements while closing the share sessions, which releases
// anything still held, and leaves the group, all within
// default.api.timeout.ms or ctx. Calling it again returns ErrClosed.
func (c *ShareConsumer) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DefaultAPITimeout)
	defer cancel()
	c.sessMu.Lock()
	for tp, offs := range c.delivered {
		t := Accept
		if c.cfg.AcknowledgementMode == AcknowledgeExplicit {
			t = Release
		}
		for off := range offs {
			c.ackLocked(tp, off, t)
		}
	}
	clear(c.delivered)
	_, err := c.commitLocked(ctx, true)
	c.sessMu.Unlock()
	c.mu.Lock()
	c.closed = true
	epoch := c.epoch
	c.mu.Unlock()
	if epoch > 0 {
		err = errors.Join(err, c.leave(ctx))
	}
	c.cancel()
	c.bg.Wait()
	c.runCallbacks()
	return errors.Join(err, c.cl.Close())
}

// leave sends the heartbeat with epoch -1 that leaves the group.
func (c *ShareConsumer) leave(ctx context.Context) error {
	id, err := c.cl.FindCoordinator(ctx, 0, c.cfg.GroupID)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.GroupID, req.MemberID, req.MemberEpoch = c.cfg.GroupID, c.memberID, -1
	kresp, err := c.cl.RequestBroker(ctx, id, req)
	if err != nil {
		return err
	}
	err = kerr.ErrorForCode(kresp.(*kmsg.ShareGroupHeartbeatResponse).ErrorCode)
	if errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.FencedMemberEpoch) {
		// The group no longer has this member (a coordinator restarted or
		// its session expired): it has left already.
		return nil
	}
	return err
}
