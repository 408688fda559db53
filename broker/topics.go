package broker

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkit/kafkit/internal/coordinator"
	"github.com/kafkit/kafkit/internal/replica"
	"github.com/kafkit/kafkit/internal/storage"
)

// topic is one topic. Its partitions slice and configs map are never mutated
// in place: growth and config changes install new copies under the
// registry's lock, so readers holding a *topic see a consistent snapshot.
type topic struct {
	name       string
	id         [16]byte
	internal   bool
	configs    map[string]string
	partitions []*partition
}

// partition is one partition's log plus the fetches waiting for data on it.
type partition struct {
	topic string
	index int32
	log   *storage.Log
	// lastFlush is when the maintenance goroutine, its only user, last
	// fsynced the log for flush.ms.
	lastFlush time.Time
	// fault is the last storage fault logged (storageFault), nil when none.
	fault atomic.Pointer[string]
	// repl is its replication state on a cluster node, set once the
	// metadata image gave it one (cluster_replica.go); nil on a single
	// node.
	repl atomic.Pointer[replica.Partition]

	// waitMu guards waiters: long-polling fetches, each woken (without
	// blocking) after every append or when the partition goes away.
	waitMu  sync.Mutex
	waiters map[chan struct{}]struct{}
}

func (p *partition) addWaiter(ch chan struct{}) {
	p.waitMu.Lock()
	if p.waiters == nil {
		p.waiters = make(map[chan struct{}]struct{})
	}
	p.waiters[ch] = struct{}{}
	p.waitMu.Unlock()
}

func (p *partition) removeWaiter(ch chan struct{}) {
	p.waitMu.Lock()
	delete(p.waiters, ch)
	p.waitMu.Unlock()
}

// notify wakes the Fetch requests waiting for the partition's data and
// reports whether any was waiting.
func (p *partition) notify() bool {
	p.waitMu.Lock()
	for ch := range p.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	woke := len(p.waiters) > 0
	p.waitMu.Unlock()
	return woke
}

// topicRegistry owns every topic. mu guards byName and byID and serializes
// topic creation, deletion, growth and config changes together with the
// write of topics.json that records them.
type topicRegistry struct {
	b      *Broker
	mu     sync.RWMutex
	byName map[string]*topic
	byID   map[[16]byte]*topic
}

// topicRecord is a topic's entry in <log.dirs>/topics.json, the broker's
// durable record of which topics exist with what partition count and config
// overrides (Kafka keeps this in its KRaft metadata log).
type topicRecord struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Internal   bool              `json:"internal,omitempty"`
	Configs    map[string]string `json:"configs,omitempty"`
}

func (r *topicRegistry) metaPath() string { return r.b.cfg.DataDir + "/topics.json" }

func openTopicRegistry(b *Broker) (*topicRegistry, error) {
	r := &topicRegistry{b: b, byName: make(map[string]*topic), byID: make(map[[16]byte]*topic)}
	data, err := readFile(b.fs, r.metaPath())
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", r.metaPath(), err)
	}
	var recs []topicRecord
	if err := json.Unmarshal(data, &recs); err != nil {
		return nil, fmt.Errorf("reading %s: %w", r.metaPath(), err)
	}
	for _, rec := range recs {
		id, err := base64.RawURLEncoding.DecodeString(rec.ID)
		if err != nil || len(id) != 16 {
			return nil, fmt.Errorf("reading %s: topic %s has a bad id %q", r.metaPath(), rec.Name, rec.ID)
		}
		t := &topic{name: rec.Name, internal: rec.Internal, configs: rec.Configs}
		copy(t.id[:], id)
		if t.configs == nil {
			t.configs = map[string]string{}
		}
		t.partitions, err = r.openPartitions(t, 0, rec.Partitions)
		if err != nil {
			closePartitions(t.partitions)
			r.close()
			return nil, err
		}
		r.byName[t.name] = t
		r.byID[t.id] = t
	}
	return r, nil
}

func (r *topicRegistry) partitionDir(topic string, p int32) string {
	return r.b.cfg.DataDir + "/" + topic + "-" + strconv.Itoa(int(p))
}

// openConcurrency is how many partitions openPartitions opens at once, so
// that a restart's reads and recovery fsyncs overlap in the file system.
const openConcurrency = 32

// openPartitions opens partitions [from, to) of t, openConcurrency at a
// time. On failure it returns the first errors with the partitions it
// opened (nil where it did not), for the caller to close or delete.
func (r *topicRegistry) openPartitions(t *topic, from, to int32) ([]*partition, error) {
	parts := make([]*partition, to-from)
	batch := newSyncBatch(r.b.fs)
	cfg := r.b.conf().storageConfig(t.configs)
	var failed atomic.Bool
	err := inParallel(len(parts), func(i int) error {
		if failed.Load() {
			return nil
		}
		p, err := r.openPartition(t, from+int32(i), cfg, batch)
		if err != nil {
			failed.Store(true)
			return err
		}
		parts[i] = p
		return nil
	})
	if ferr := batch.flush(); ferr != nil && err == nil {
		r.b.log.Error("could not sync the new partitions' directories", "topic", t.name, "err", ferr)
		err = ferr
	}
	return parts, err
}

// inParallel calls fn for every i in [0, n), openConcurrency at a time, and
// joins their errors.
func inParallel(n int, fn func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range min(openConcurrency, n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// closePartitions closes what openPartitions opened; deletePartitions also
// removes the data (a creation that failed).
func closePartitions(parts []*partition) {
	for _, p := range parts {
		if p != nil {
			p.log.Close()
		}
	}
}

func deletePartitions(parts []*partition) {
	for _, p := range parts {
		if p != nil {
			p.log.Delete()
		}
	}
}

// openPartition opens partition i of t, whose storage configuration is cfg,
// through fsys (a syncBatch).
func (r *topicRegistry) openPartition(t *topic, i int32, cfg storage.Config, fsys storage.FS) (*partition, error) {
	dir := r.partitionDir(t.name, i)
	l, err := storage.Open(fsys, dir, cfg, r.b.log.With("topic", t.name, "partition", i))
	if err != nil {
		r.b.log.Error("could not open partition", "topic", t.name, "partition", i, "err", err)
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	if err := l.AssignTopicID(t.id); err != nil {
		l.Close()
		r.b.log.Error("could not write partition.metadata", "topic", t.name, "partition", i, "err", err)
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	return &partition{topic: t.name, index: i, log: l}, nil
}

// persist writes topics.json; the caller holds mu.
func (r *topicRegistry) persist() error {
	recs := make([]topicRecord, 0, len(r.byName))
	for _, t := range r.byName {
		recs = append(recs, topicRecord{
			Name: t.name, ID: base64.RawURLEncoding.EncodeToString(t.id[:]),
			Partitions: int32(len(t.partitions)), Internal: t.internal, Configs: t.configs,
		})
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	data, err := json.MarshalIndent(recs, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(r.b.fs, r.metaPath(), data)
}

func (r *topicRegistry) get(name string) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byName[name]
}

func (r *topicRegistry) getByID(id [16]byte) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byID[id]
}

// all returns the topics sorted by name.
func (r *topicRegistry) all() []*topic {
	r.mu.RLock()
	ts := make([]*topic, 0, len(r.byName))
	for _, t := range r.byName {
		ts = append(ts, t)
	}
	r.mu.RUnlock()
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
	return ts
}

// partition returns the partition or nil.
func (r *topicRegistry) partition(name string, p int32) *partition {
	t := r.get(name)
	if t == nil || p < 0 || int(p) >= len(t.partitions) {
		return nil
	}
	return t.partitions[p]
}

// topicError is a Kafka error with the message Kafka sends along with it.
type topicError struct {
	err *kerr.Error
	msg string
}

func (e *topicError) Error() string { return e.msg }
func (e *topicError) Unwrap() error { return e.err }

// replicaAssignment is one partition's manual replica list in CreateTopics.
type replicaAssignment struct {
	partition int32
	replicas  []int32
}

// checkReplicas is Kafka's controller check of a manual replica list, in its
// order, on a cluster whose only broker is nodeID.
func checkReplicas(nodeID int32, replicas []int32) *topicError {
	if len(replicas) == 0 {
		return newTopicError(kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
	}
	sorted := slices.Sorted(slices.Values(replicas))
	for i, id := range sorted {
		if id != nodeID {
			return newTopicError(kerr.InvalidReplicaAssignment, "The manual partition assignment includes broker %d, but no such broker is registered.", id)
		}
		if i > 0 && sorted[i-1] == id {
			return newTopicError(kerr.InvalidReplicaAssignment, "The manual partition assignment includes the broker %d more than once.", id)
		}
	}
	return nil
}

func newTopicError(err *kerr.Error, format string, args ...any) *topicError {
	return &topicError{err: err, msg: fmt.Sprintf(format, args...)}
}

// errorCode maps an error to a Kafka error code (one place for the broker).
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	switch {
	case errors.Is(err, storage.ErrCorruptMessage):
		return kerr.CorruptMessage.Code
	case errors.Is(err, storage.ErrRecordTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, storage.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, storage.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, storage.ErrTransactionCoordinatorFenced):
		return kerr.TransactionCoordinatorFenced.Code
	case errors.Is(err, storage.ErrInvalidTimestamp):
		return kerr.InvalidTimestamp.Code
	case errors.Is(err, storage.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, storage.ErrUnsupportedMagic):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, errInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, coordinator.ErrClosed):
		return kerr.CoordinatorNotAvailable.Code
	case isStorageFault(err):
		return kerr.KafkaStorageError.Code
	}
	return kerr.UnknownServerError.Code
}

// isStorageFault reports an error of the file system under a log (no space,
// too many open files, an I/O error), which Kafka answers with
// KAFKA_STORAGE_ERROR.
func isStorageFault(err error) bool {
	var pathErr *fs.PathError
	var linkErr *os.LinkError
	var sysErr *os.SyscallError
	var errno syscall.Errno
	return errors.As(err, &pathErr) || errors.As(err, &linkErr) || errors.As(err, &sysErr) || errors.As(err, &errno)
}

// storageFault logs a storage fault of the partition once per distinct
// cause (a full disk would otherwise log every produce) and returns its
// error code; recovered clears it after the partition works again.
func (p *partition) storageFault(b *Broker, op string, err error) int16 {
	code := errorCode(err)
	if code != kerr.KafkaStorageError.Code {
		return code
	}
	cause := err.Error()
	if last := p.fault.Swap(&cause); last == nil || *last != cause {
		b.log.Error("storage fault; answering KAFKA_STORAGE_ERROR for this partition until it clears", "topic", p.topic, "partition", p.index, "op", op, "err", err)
	}
	return code
}

func (p *partition) recovered(b *Broker) {
	if p.fault.Load() != nil && p.fault.Swap(nil) != nil {
		b.log.Info("storage works again", "topic", p.topic, "partition", p.index)
	}
}

// errorMessage is the message sent in responses that carry one; nil when the
// code alone says it all.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	var te *topicError
	if errors.As(err, &te) {
		return &te.msg
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return &ke.Description
	}
	s := err.Error()
	return &s
}

// validateTopicName applies Kafka's Topic.validate rules.
func validateTopicName(name string) error {
	switch {
	case name == "":
		return newTopicError(kerr.InvalidTopicException, "Topic name is illegal, it can't be empty")
	case name == "." || name == "..":
		return newTopicError(kerr.InvalidTopicException, "Topic name cannot be \".\" or \"..\"")
	case len(name) > 249:
		return newTopicError(kerr.InvalidTopicException, "Topic name is illegal, it can't be longer than 249 characters, topic name: %s", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return newTopicError(kerr.InvalidTopicException, "Topic name %s is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'", name)
		}
	}
	return nil
}

// maxPartitionsPerTopic bounds what one request can make the broker open:
// Kafka has no hard limit, but a forged count of millions would stall a
// single node for minutes.
const maxPartitionsPerTopic = 10_000

// createSpec describes a topic to create.
type createSpec struct {
	name              string
	partitions        int32 // -1: num.partitions
	replicationFactor int16 // -1: default.replication.factor
	assignment        []replicaAssignment
	configs           map[string]string
	internal          bool
	validateOnly      bool
}

// create makes a topic; it returns the topic (or what it would be, for
// validate-only) and a Kafka error.
func (r *topicRegistry) create(s createSpec) (*topic, error) {
	if err := validateTopicName(s.name); err != nil {
		return nil, err
	}
	if dev := windowsDeviceName(s.name); noDeviceNames && dev != "" {
		return nil, newTopicError(kerr.InvalidTopicException, "Topic name %s is illegal on Windows: its partition directories would be named after the device %s", s.name, dev)
	}
	if strings.HasPrefix(s.name, "__") && !s.internal && (s.name == "__consumer_offsets" || s.name == "__transaction_state") {
		return nil, newTopicError(kerr.InvalidRequest, "Creation of internal topic %s is prohibited.", s.name)
	}
	if r.b.cluster != nil {
		return r.b.cluster.createTopic(s)
	}
	if len(s.assignment) > 0 {
		if s.partitions != -1 || s.replicationFactor != -1 {
			return nil, newTopicError(kerr.InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.")
		}
		seen := make(map[int32]bool, len(s.assignment))
		for _, a := range s.assignment {
			if seen[a.partition] {
				return nil, newTopicError(kerr.InvalidReplicaAssignment, "Found multiple manual partition assignments for partition %d", a.partition)
			}
			seen[a.partition] = true
			if err := checkReplicas(r.b.nodeID, a.replicas); err != nil {
				return nil, err
			}
			s.replicationFactor = int16(len(a.replicas))
		}
		s.partitions = int32(len(s.assignment))
		for p := range s.partitions {
			if !seen[p] {
				return nil, newTopicError(kerr.InvalidReplicaAssignment, "partitions should be a consecutive 0-based integer sequence")
			}
		}
	}
	if s.partitions == -1 {
		s.partitions = int32(r.b.cfg.NumPartitions)
	}
	if s.replicationFactor == -1 {
		s.replicationFactor = int16(r.b.cfg.DefaultReplicationFactor)
	}
	if s.partitions <= 0 {
		return nil, newTopicError(kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value.")
	}
	if s.partitions > maxPartitionsPerTopic {
		return nil, newTopicError(kerr.InvalidPartitions, "Number of partitions %d is above this broker's limit of %d per topic.", s.partitions, maxPartitionsPerTopic)
	}
	if s.replicationFactor <= 0 {
		return nil, newTopicError(kerr.InvalidReplicationFactor, "Replication factor must be larger than 0.")
	}
	if s.replicationFactor > 1 {
		return nil, newTopicError(kerr.InvalidReplicationFactor, "Replication factor: %d larger than available brokers: 1.", s.replicationFactor)
	}
	if err := validateTopicConfigs(s.configs); err != nil {
		return nil, newTopicError(kerr.InvalidConfig, "%s", strings.TrimPrefix(err.Error(), errInvalidConfig.Error()+": "))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byName[s.name]; ok {
		return nil, newTopicError(kerr.TopicAlreadyExists, "Topic '%s' already exists.", s.name)
	}
	if collides := r.collision(s.name); collides != "" {
		return nil, newTopicError(kerr.InvalidTopicException, "Topic '%s' collides with existing topic: %s", s.name, collides)
	}
	t := &topic{name: s.name, internal: s.internal, configs: maps.Clone(s.configs)}
	if t.configs == nil {
		t.configs = map[string]string{}
	}
	rand.Read(t.id[:])
	if s.validateOnly {
		t.partitions = make([]*partition, s.partitions)
		return t, nil
	}
	parts, err := r.openPartitions(t, 0, s.partitions)
	if err != nil {
		deletePartitions(parts)
		return nil, err
	}
	t.partitions = parts
	r.byName[t.name] = t
	r.byID[t.id] = t
	if err := r.persist(); err != nil {
		delete(r.byName, t.name)
		delete(r.byID, t.id)
		deletePartitions(t.partitions)
		return nil, err
	}
	r.b.log.Info("created topic", "topic", t.name, "partitions", s.partitions)
	return t, nil
}

// collision reports an existing topic whose name has the same collisionKey.
func (r *topicRegistry) collision(name string) string {
	norm := collisionKey(name, foldCaseNames)
	for other := range r.byName {
		if collisionKey(other, foldCaseNames) == norm {
			return other
		}
	}
	return ""
}

// delete removes a topic and its data.
func (r *topicRegistry) delete(name string) error {
	if r.b.cluster != nil {
		return r.b.cluster.deleteTopic(name) // each node forgets the offsets as it applies it
	}
	if err := r.deleteLocal(name); err != nil {
		return err
	}
	r.b.forgetTopicOffsets(name)
	return nil
}

func (r *topicRegistry) deleteLocal(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.byName[name]
	if !ok {
		return kerr.UnknownTopicOrPartition
	}
	if t.internal {
		return newTopicError(kerr.TopicAuthorizationFailed, "Cannot delete internal topic %s", name)
	}
	delete(r.byName, name)
	delete(r.byID, t.id)
	if err := r.persist(); err != nil {
		r.byName[name] = t
		r.byID[t.id] = t
		return err
	}
	for _, p := range t.partitions {
		if err := p.log.Delete(); err != nil {
			r.b.log.Warn("deleting partition data", "topic", name, "partition", p.index, "err", err)
		}
		p.notify()
	}
	r.b.log.Info("deleted topic", "topic", name)
	return nil
}

// grow raises a topic's partition count (CreatePartitions).
func (r *topicRegistry) grow(name string, count int32, validateOnly bool) error {
	if r.b.cluster != nil {
		return r.b.cluster.growTopic(name, count, validateOnly)
	}
	return r.growLocal(name, count, validateOnly)
}

func (r *topicRegistry) growLocal(name string, count int32, validateOnly bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.byName[name]
	if !ok {
		return newTopicError(kerr.UnknownTopicOrPartition, "The topic '%s' does not exist.", name)
	}
	cur := int32(len(t.partitions))
	if count < cur {
		return newTopicError(kerr.InvalidPartitions, "Topic currently has %d partitions, which is higher than the requested %d.", cur, count)
	}
	if count > maxPartitionsPerTopic {
		return newTopicError(kerr.InvalidPartitions, "Number of partitions %d is above this broker's limit of %d per topic.", count, maxPartitionsPerTopic)
	}
	if count == cur {
		return newTopicError(kerr.InvalidPartitions, "Topic already has %d partitions.", cur)
	}
	if validateOnly {
		return nil
	}
	added, err := r.openPartitions(t, cur, count)
	if err != nil {
		deletePartitions(added)
		return err
	}
	parts := append(slices.Clip(t.partitions), added...)
	nt := *t
	nt.partitions = parts
	r.byName[name] = &nt
	r.byID[t.id] = &nt
	if err := r.persist(); err != nil {
		r.byName[name] = t
		r.byID[t.id] = t
		deletePartitions(added)
		return err
	}
	return nil
}

// setConfigs replaces a topic's overrides and applies them to its logs live.
func (r *topicRegistry) setConfigs(name string, configs map[string]string) error {
	if r.b.cluster != nil {
		return r.b.cluster.setTopicConfigs(name, configs)
	}
	return r.setConfigsLocal(name, configs)
}

func (r *topicRegistry) setConfigsLocal(name string, configs map[string]string) error {
	if err := validateTopicConfigs(configs); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.byName[name]
	if !ok {
		return kerr.UnknownTopicOrPartition
	}
	nt := *t
	nt.configs = maps.Clone(configs)
	r.byName[name] = &nt
	r.byID[t.id] = &nt
	if err := r.persist(); err != nil {
		r.byName[name] = t
		r.byID[t.id] = t
		return err
	}
	sc := r.b.conf().storageConfig(nt.configs)
	var errs []error
	for _, p := range nt.partitions {
		if err := p.log.SetConfig(sc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// reconfigure pushes the effective configs to every log after a dynamic
// broker config change (topic overrides still win).
func (r *topicRegistry) reconfigure() {
	for _, t := range r.all() {
		sc := r.b.conf().storageConfig(t.configs)
		for _, p := range t.partitions {
			if err := p.log.SetConfig(sc); err != nil {
				r.b.log.Warn("applying config", "topic", t.name, "partition", p.index, "err", err)
			}
		}
	}
}

// applyRetention deletes expired segments and forgets idle idempotent
// producers (producer.id.expiration.ms), as Kafka's retention and producer
// expiration tasks do.
func (r *topicRegistry) applyRetention(now time.Time) {
	pidExpiry := msDuration(r.b.cfg.ProducerIDExpirationMs)
	for _, t := range r.all() {
		for _, p := range t.partitions {
			if pidExpiry >= 0 {
				p.log.ExpireProducers(now, pidExpiry)
			}
			if n, err := p.log.ApplyRetention(now); err != nil {
				r.b.log.Warn("retention failed", "topic", t.name, "partition", p.index, "err", err)
			} else if n > 0 {
				r.b.log.Info("retention deleted segments", "topic", t.name, "partition", p.index, "segments", n)
			}
		}
	}
}

// flushDue fsyncs the logs whose flush.ms has passed since the broker last
// flushed them; the storage layer also flushes on append when flush.ms has
// passed, this covers partitions that went quiet.
func (r *topicRegistry) flushDue(now time.Time) {
	for _, t := range r.all() {
		flushMs := r.b.conf().storageConfig(t.configs).FlushMs
		if flushMs <= 0 || flushMs >= 1<<62 {
			continue
		}
		for _, p := range t.partitions {
			if now.Sub(p.lastFlush) < flushMs {
				continue
			}
			p.lastFlush = now
			if err := p.log.Flush(); err != nil {
				r.b.log.Warn("flush failed", "topic", t.name, "partition", p.index, "err", err)
			}
		}
	}
}

// close flushes and closes every log, openConcurrency at a time (each
// writes and fsyncs its checkpoints, which the journal commits together).
func (r *topicRegistry) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []*partition
	for _, t := range r.byName {
		parts = append(parts, t.partitions...)
	}
	return inParallel(len(parts), func(i int) error {
		p := parts[i]
		defer p.notify()
		if err := p.log.Close(); err != nil {
			return fmt.Errorf("closing %s-%d: %w", p.topic, p.index, err)
		}
		return nil
	})
}
