package producer

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/kafkit/kafkit"
)

// Partitioner chooses the partition of a record whose Partition is
// kafkit.AnyPartition; a record with an explicit partition never reaches it.
// Implementations are safe for concurrent use. numPartitions is the topic's
// current partition count; for numPartitions <= 0 every partitioner returns
// kafkit.AnyPartition instead of dividing by zero, and the caller must treat
// that as "no partition available".
type Partitioner interface {
	Partition(topic string, key []byte, valueLen int, numPartitions int32) int32
}

// defaultBatchSize is Kafka's batch.size default, used by the sticky
// partitioners when they are given a non-positive batch size.
const defaultBatchSize = 16384

// PartitionerByName returns the partitioner the `partitioner` property names.
// batchSize is the producer's batch.size; the sticky partitioners switch
// partitions after that many bytes (<= 0 means Kafka's default, 16384).
//
// Names:
//   - "" or "default": Java's default, murmur2 for keyed records and KIP-794
//     uniform sticky for keyless ones (also accepted:
//     org.apache.kafka.clients.producer.internals.DefaultPartitioner)
//   - "uniform_sticky": sticky for every record, keys ignored
//     (org.apache.kafka.clients.producer.UniformStickyPartitioner)
//   - "round_robin": every record to the next partition, keys ignored
//     (org.apache.kafka.clients.producer.RoundRobinPartitioner)
//   - "sarama": sarama's NewHashPartitioner (FNV-1a for keys, random without)
//   - librdkafka's: "random", "consistent", "consistent_random", "murmur2",
//     "murmur2_random", "fnv1a", "fnv1a_random"
func PartitionerByName(name string, batchSize int) (Partitioner, error) {
	switch name {
	case "", "default", "org.apache.kafka.clients.producer.internals.DefaultPartitioner":
		return NewDefaultPartitioner(batchSize), nil
	case "uniform_sticky", "org.apache.kafka.clients.producer.UniformStickyPartitioner":
		return NewUniformStickyPartitioner(batchSize), nil
	case "round_robin", "org.apache.kafka.clients.producer.RoundRobinPartitioner":
		return NewRoundRobinPartitioner(), nil
	case "sarama":
		return NewSaramaHashPartitioner(), nil
	case "random":
		return NewRandomPartitioner(), nil
	case "consistent":
		return &hashPartitioner{hash: crc32Mod}, nil
	case "consistent_random":
		return &hashPartitioner{hash: crc32Mod, fallbackOn: emptyKey, fallback: randomPartitioner{}}, nil
	case "murmur2":
		return &hashPartitioner{hash: murmur2Mod}, nil
	case "murmur2_random":
		return &hashPartitioner{hash: murmur2Mod, fallbackOn: nullKey, fallback: randomPartitioner{}}, nil
	case "fnv1a":
		return &hashPartitioner{hash: fnv1aMod}, nil
	case "fnv1a_random":
		return &hashPartitioner{hash: fnv1aMod, fallbackOn: nullKey, fallback: randomPartitioner{}}, nil
	}
	return nil, fmt.Errorf("producer: partitioner: unknown partitioner %q (want one of default, uniform_sticky, round_robin, sarama, random, consistent, consistent_random, murmur2, murmur2_random, fnv1a, fnv1a_random)", name)
}

// NewDefaultPartitioner returns Java's default partitioning: a keyed record
// goes to toPositive(murmur2(key)) % numPartitions, so keys land where Java
// clients put them (an empty, non-nil key is hashed too); a keyless record
// goes to the topic's sticky partition, which changes after batchSize bytes
// (KIP-794). Unlike Java, it does not weigh partitions by queue depth
// (partitioner.adaptive.partitioning.enable): the partitioner does not see the
// accumulator.
func NewDefaultPartitioner(batchSize int) Partitioner {
	return &hashPartitioner{hash: murmur2Mod, fallbackOn: nullKey, fallback: NewUniformStickyPartitioner(batchSize)}
}

// NewSaramaHashPartitioner returns a partitioner that places keys exactly as
// sarama.NewHashPartitioner does (32-bit FNV-1a, the signed remainder made
// positive) and spreads keyless records at random, so services can move from
// sarama without moving keys.
func NewSaramaHashPartitioner() Partitioner {
	return &hashPartitioner{hash: fnv1aMod, fallbackOn: nullKey, fallback: randomPartitioner{}}
}

// NewRandomPartitioner returns a partitioner that picks a partition uniformly
// at random for every record.
func NewRandomPartitioner() Partitioner { return randomPartitioner{} }

// keylessWhen says which keys a hashPartitioner hands to its fallback.
type keylessWhen uint8

const (
	neverKeyless keylessWhen = iota // hash every key, nil included (nil hashes like empty)
	nullKey                         // fallback for nil keys only
	emptyKey                        // fallback for nil and empty keys
)

// hashPartitioner maps keys to partitions with hash and hands the keys that
// fallbackOn names to fallback. It keeps no state of its own.
type hashPartitioner struct {
	hash       func(key []byte, numPartitions int32) int32
	fallbackOn keylessWhen
	fallback   Partitioner
}

func (h *hashPartitioner) Partition(topic string, key []byte, valueLen int, numPartitions int32) int32 {
	if numPartitions <= 0 {
		return kafkit.AnyPartition
	}
	if h.keyless(key) {
		return h.fallback.Partition(topic, key, valueLen, numPartitions)
	}
	return h.hash(key, numPartitions)
}

func (h *hashPartitioner) keyless(key []byte) bool {
	return h.fallbackOn == nullKey && key == nil || h.fallbackOn == emptyKey && len(key) == 0
}

// clusterPartitioner is implemented by the built-in partitioners that spread
// keyless records stickily. The producer drives their keyless records as
// Java's RecordAccumulator drives its BuiltInPartitioner: it keeps each
// topic's sticky partition itself (topicInfo.sticky), moves it on only to a
// partition with a leader (any while none has one, or none is known), and
// counts what moves it on, the records' bytes in their batches (headers and
// record framing included, not the key and value lengths Partition is
// given), as each record goes into its batch (stickyStint).
type clusterPartitioner interface {
	// stickyFor reports whether a record with key goes to its topic's
	// sticky partition, and after how many bytes that moves on; if not,
	// Partition places the record.
	stickyFor(key []byte) (batchSize int, ok bool)
}

func (h *hashPartitioner) stickyFor(key []byte) (int, bool) {
	if sp, ok := h.fallback.(*stickyPartitioner); ok && h.keyless(key) {
		return sp.batchSize, true
	}
	return 0, false // keys hash over every partition, as in Java
}

// murmur2Mod is Java's Utils.toPositive(Utils.murmur2(key)) % n, which
// librdkafka's murmur2 partitioners reproduce too.
func murmur2Mod(key []byte, n int32) int32 {
	return (Murmur2(key) & 0x7fffffff) % n
}

// crc32Mod is librdkafka's "consistent" partitioner: the unsigned CRC32 (IEEE)
// of the key modulo n; a nil key hashes like an empty one (CRC 0).
func crc32Mod(key []byte, n int32) int32 {
	return int32(crc32.ChecksumIEEE(key) % uint32(n))
}

// fnv1aMod is sarama's NewHashPartitioner for keys: the 32-bit FNV-1a hash
// read as a signed int, its remainder made positive. librdkafka's fnv1a
// partitioners take the absolute value before the remainder instead, which
// gives the same partition for every hash (including math.MinInt32, whose
// negation wraps to 2^31 in both).
func fnv1aMod(key []byte, n int32) int32 {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for _, c := range key {
		h ^= uint32(c)
		h *= prime32
	}
	p := int32(h) % n
	if p < 0 {
		p = -p
	}
	return p
}

// Murmur2 is Java's org.apache.kafka.common.utils.Utils.murmur2: 32-bit
// MurmurHash2 with seed 0x9747b28c, little-endian words, returned as Java's
// signed int. The default partitioner uses (Murmur2(key) & 0x7fffffff) % n.
func Murmur2(data []byte) int32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	h := uint32(seed) ^ uint32(len(data))
	tail := len(data) &^ 3
	for i := 0; i < tail; i += 4 {
		k := binary.LittleEndian.Uint32(data[i:])
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(data) & 3 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

type randomPartitioner struct{}

func (randomPartitioner) Partition(_ string, _ []byte, _ int, numPartitions int32) int32 {
	if numPartitions <= 0 {
		return kafkit.AnyPartition
	}
	return rand.Int32N(numPartitions)
}

// NewRoundRobinPartitioner returns Java's RoundRobinPartitioner: each topic's
// records go to partitions 0, 1, 2, ... in turn, keys ignored.
func NewRoundRobinPartitioner() Partitioner { return &roundRobinPartitioner{} }

type roundRobinPartitioner struct {
	next sync.Map // topic → *atomic.Uint32, the topic's next record number
}

func (p *roundRobinPartitioner) Partition(topic string, _ []byte, _ int, numPartitions int32) int32 {
	if numPartitions <= 0 {
		return kafkit.AnyPartition
	}
	c, ok := p.next.Load(topic)
	if !ok {
		c, _ = p.next.LoadOrStore(topic, new(atomic.Uint32))
	}
	return int32((c.(*atomic.Uint32).Add(1) - 1) % uint32(numPartitions))
}

// NewUniformStickyPartitioner returns KIP-794's uniform sticky partitioner for
// every record, keys ignored: each topic sticks to one partition until
// batchSize bytes were produced to it, then moves to another partition chosen
// at random. In a Producer it counts the bytes the records take in their
// batches and moves only to partitions with a leader, as Java's; called
// through Partition it counts key plus value lengths. Unlike Java it never
// picks the partition it is leaving, so each switch really spreads load.
func NewUniformStickyPartitioner(batchSize int) Partitioner {
	if batchSize <= 0 {
		batchSize = defaultBatchSize
	}
	return &stickyPartitioner{batchSize: batchSize}
}

type stickyPartitioner struct {
	batchSize int
	topics    sync.Map                    // topic → *stickyTopic
	last      atomic.Pointer[stickyTopic] // the topic of the latest call: most producers write one
}

// stickyTopic is one topic's sticky state, shared by the Partition calls of
// the topic: the sticky partition in the high 32 bits (-1 before the first
// record) and the bytes sent to it since it was chosen in the low 32,
// updated together by compare-and-swap, so that concurrent Sends neither
// take a lock nor move the topic on twice.
type stickyTopic struct {
	name  string
	state atomic.Uint64
}

func packSticky(partition int32, produced uint32) uint64 {
	return uint64(uint32(partition))<<32 | uint64(produced)
}

func (s *stickyPartitioner) Partition(topic string, key []byte, valueLen int, numPartitions int32) int32 {
	return s.stick(topic, numPartitions, nil, len(key)+valueLen)
}

func (s *stickyPartitioner) stickyFor([]byte) (int, bool) { return s.batchSize, true }

func (s *stickyPartitioner) topic(name string) *stickyTopic {
	if t := s.last.Load(); t != nil && t.name == name {
		return t
	}
	v, ok := s.topics.Load(name)
	if !ok {
		t := &stickyTopic{name: name}
		t.state.Store(packSticky(-1, 0))
		v, _ = s.topics.LoadOrStore(name, t)
	}
	t := v.(*stickyTopic)
	s.last.Store(t)
	return t
}

// stick returns topic's sticky partition for a record of size bytes, first
// moving on (to one of available, if any of them is in range) once
// batchSize bytes went to it.
func (s *stickyPartitioner) stick(topic string, numPartitions int32, available []int32, size int) int32 {
	if numPartitions <= 0 {
		return kafkit.AnyPartition
	}
	t := s.topic(topic)
	for {
		old := t.state.Load()
		partition, produced := int32(old>>32), uint64(uint32(old))
		if partition < 0 || partition >= numPartitions || produced >= uint64(s.batchSize) {
			partition, produced = nextSticky(partition, numPartitions, available), 0
		}
		if t.state.CompareAndSwap(old, packSticky(partition, uint32(min(produced+uint64(size), math.MaxUint32)))) {
			return partition
		}
	}
}

// stickyStint is one partition's stint as a topic's sticky partition in a
// producer. produced and full are guarded by the lock of that partition's
// queue (partQueue.mu), which every Send counting a record in holds anyway,
// so that a Send takes no atomic operation of its own for the partitioner;
// the other fields do not change.
type stickyStint struct {
	ti        *topicInfo
	partition int32
	limit     int // the partitioner's batch size
	produced  int
	full      bool
}

// stint returns ti's sticky stint for keyless records, starting one (with
// limit bytes) when there is none yet or its partition is no longer among
// the topic's n.
func (ti *topicInfo) stint(limit int, n int32) *stickyStint {
	for {
		cur := ti.sticky.Load()
		if cur != nil && cur.partition < n {
			return cur
		}
		prev := int32(-1)
		if cur != nil {
			prev = cur.partition
		}
		next := &stickyStint{ti: ti, partition: nextSticky(prev, n, ti.availablePartitions()), limit: limit}
		if ti.sticky.CompareAndSwap(cur, next) {
			return next
		}
	}
}

// add counts a record that took size bytes in its batch in st, and
// reports whether that filled st: the caller then moves the topic on
// (moveOn) once it released the partition's lock. Called with the
// partition's partQueue.mu held.
func (st *stickyStint) add(size int) bool {
	if st.full {
		return false // records that chose st before it moved on
	}
	st.produced += size
	st.full = st.produced >= st.limit
	return st.full
}

// moveOn ends st, which filled: the topic's keyless records go to another
// partition (see nextSticky) from now on.
func (st *stickyStint) moveOn() {
	next := &stickyStint{ti: st.ti, partition: nextSticky(st.partition, st.ti.partitions.Load(), st.ti.availablePartitions()), limit: st.limit}
	st.ti.sticky.CompareAndSwap(st, next)
}

// nextSticky picks a partition at random among those of available below n
// (all n when there is none), other than cur when there is another.
func nextSticky(cur, n int32, available []int32) int32 {
	cands := make([]int32, 0, len(available))
	for _, p := range available {
		if p >= 0 && p < n && p != cur {
			cands = append(cands, p)
		}
	}
	switch {
	case len(cands) > 0:
		return cands[rand.IntN(len(cands))]
	case cur >= 0 && cur < n && slices.Contains(available, cur):
		return cur // the only partition with a leader
	case cur < 0 || cur >= n || n == 1:
		return rand.Int32N(n)
	}
	p := rand.Int32N(n - 1)
	if p >= cur {
		p++
	}
	return p
}
