package producer

import (
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/IBM/sarama"
	"github.com/kafkit/kafkit"
)

// Java's murmur2 as Kafka tests it: the cases of testMurmur2 in
// clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
// (apache/kafka), and of unittest_murmur2 in librdkafka's src/rdmurmur2.c,
// whose expected values were computed with the Java client.
var murmur2Vectors = []struct {
	key  string
	want int32
}{
	// apache/kafka UtilsTest.testMurmur2
	{"21", -973932308},
	{"foobar", -790332482},
	{"a-little-bit-long-string", -985981536},
	{"a-little-bit-longer-string", -1486304829},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
	{"abc", 479470107},
	// librdkafka src/rdmurmur2.c unittest_murmur2 (java_murmur2_results)
	{"kafka", int32FromHex(0xd067cf64)},
	{"giberish123456789", int32FromHex(0x8f552b0c)},
	{"1234", int32FromHex(0x9fc97b14)},
	{"234", int32FromHex(0xe7c009ca)},
	{"34", int32FromHex(0x873930da)},
	{"4", int32FromHex(0x5a4b5ca1)},
	{"PreAmbleWillBeRemoved,ThePrePartThatIs", int32FromHex(0x78424f1c)},
	{"reAmbleWillBeRemoved,ThePrePartThatIs", int32FromHex(0x4a62b377)},
	{"eAmbleWillBeRemoved,ThePrePartThatIs", int32FromHex(0xe0e4e09e)},
	{"AmbleWillBeRemoved,ThePrePartThatIs", int32FromHex(0x62b8b43f)},
	{"", int32FromHex(0x106e08d9)},
}

func int32FromHex(u uint32) int32 { return int32(u) }

func TestMurmur2(t *testing.T) {
	for _, v := range murmur2Vectors {
		if got := Murmur2([]byte(v.key)); got != v.want {
			t.Errorf("Murmur2(%q) = %d (%#x), want %d (%#x)", v.key, got, uint32(got), v.want, uint32(v.want))
		}
	}
	if got, want := Murmur2(nil), Murmur2([]byte{}); got != want {
		t.Errorf("Murmur2(nil) = %d, want Murmur2(empty) = %d", got, want)
	}
}

// partitionCounts covers small counts, primes, powers of two and the largest
// int32, where the remainder is (nearly) the hash itself.
var partitionCounts = []int32{1, 2, 3, 7, 16, 17, 100, 1000, 4096, math.MaxInt32}

func TestDefaultPartitionerKeyedIsJavaMurmur2(t *testing.T) {
	p := NewDefaultPartitioner(0)
	for _, v := range murmur2Vectors {
		for _, n := range partitionCounts {
			want := (v.want & 0x7fffffff) % n
			if got := p.Partition("t", []byte(v.key), 10, n); got != want {
				t.Errorf("key %q, %d partitions: got %d, want %d", v.key, n, got, want)
			}
		}
	}
}

// librdkafka's tests/0048-partitioner.c do_test_partitioners: keys NULL, "",
// "23456", "this is another string with more length to it perhaps" and
// "hejsan", their expected hashes (-1: random), run with 17 partitions (7 in
// its quick mode); the fnv1a values were computed with Go's hash/fnv there.
func TestLibrdkafkaPartitioners(t *testing.T) {
	keys := [][]byte{nil, {}, []byte("23456"), []byte("this is another string with more length to it perhaps"), []byte("hejsan")}
	const random = -1
	tests := []struct {
		name   string
		hashes [5]int64
	}{
		{"random", [5]int64{random, random, random, random, random}},
		{"consistent", [5]int64{0x0, 0x0, 0xb1b451d7, 0xb0150df7, 0xd077037e}},
		{"consistent_random", [5]int64{random, random, 0xb1b451d7, 0xb0150df7, 0xd077037e}},
		{"murmur2", [5]int64{0x106e08d9, 0x106e08d9, 0x058d780f, 0x4f7703da, 0x5ec19395}},
		{"murmur2_random", [5]int64{random, 0x106e08d9, 0x058d780f, 0x4f7703da, 0x5ec19395}},
		{"fnv1a", [5]int64{0x7ee3623b, 0x7ee3623b, 0x27e6f469, 0x155e3e5f, 0x17b1e27a}},
		{"fnv1a_random", [5]int64{random, 0x7ee3623b, 0x27e6f469, 0x155e3e5f, 0x17b1e27a}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PartitionerByName(tt.name, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int32{7, 17} {
				for i, key := range keys {
					got := p.Partition("t", key, 1, n)
					if tt.hashes[i] == random {
						seen := map[int32]bool{}
						for range 200 {
							got := p.Partition("t", key, 1, n)
							if got < 0 || got >= n {
								t.Fatalf("key %q, %d partitions: random partition %d out of range", key, n, got)
							}
							seen[got] = true
						}
						if len(seen) < 2 {
							t.Errorf("key %q (nil %v), %d partitions: 200 records all went to %v, want random", key, key == nil, n, seen)
						}
						continue
					}
					if want := int32(tt.hashes[i] % int64(n)); got != want {
						t.Errorf("key %q (nil %v), %d partitions: got %d, want %d", key, key == nil, n, got, want)
					}
				}
			}
		})
	}
}

// librdkafka's src/rdfnv1a.c unittest_fnv1a: sarama-compatible FNV-1a hashes
// (absolute value of the signed hash) computed with Go's hash/fnv.
func TestFNV1aVectors(t *testing.T) {
	vectors := []struct {
		key  string
		hash uint32
	}{
		{"kafka", 0xd33c4e1},
		{"giberish123456789", 0x77a58295},
		{"1234", 0x23bdd03},
		{"234", 0x2dea3cd2},
		{"34", 0x740fa83e},
		{"4", 0x310ca263},
		{"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x65cbd69c},
		{"reAmbleWillBeRemoved,ThePrePartThatIs", 0x6e49c79a},
		{"eAmbleWillBeRemoved,ThePrePartThatIs", 0x69eed356},
		{"AmbleWillBeRemoved,ThePrePartThatIs", 0x6abcc023},
		{"", 0x7ee3623b},
	}
	p, err := PartitionerByName("fnv1a", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vectors {
		for _, n := range partitionCounts {
			if got, want := p.Partition("t", []byte(v.key), 0, n), int32(v.hash%uint32(n)); got != want {
				t.Errorf("key %q, %d partitions: got %d, want %d", v.key, n, got, want)
			}
		}
	}
}

// TestSaramaHashPartitioner runs sarama's own NewHashPartitioner beside ours
// over many random keys and partition counts.
func TestSaramaHashPartitioner(t *testing.T) {
	ours := NewSaramaHashPartitioner()
	theirs := sarama.NewHashPartitioner("t")
	rng := rand.New(rand.NewPCG(1, 2))
	var negativeHashes int
	for i := range 20000 {
		key := make([]byte, rng.IntN(48))
		for j := range key {
			key[j] = byte(rng.UintN(256))
		}
		n := int32(1 + rng.IntN(1000))
		if i%10 == 0 {
			n = partitionCounts[rng.IntN(len(partitionCounts))]
		}
		want, err := theirs.Partition(&sarama.ProducerMessage{Topic: "t", Key: sarama.ByteEncoder(key)}, n)
		if err != nil {
			t.Fatal(err)
		}
		if got := ours.Partition("t", key, 0, n); got != want {
			t.Fatalf("key %x, %d partitions: got %d, sarama %d", key, n, got, want)
		}
		if n == math.MaxInt32 && want != fnvSum(key) {
			negativeHashes++
		}
	}
	if negativeHashes == 0 {
		t.Error("no key exercised sarama's negative-hash path")
	}
	for range 100 {
		if got := ours.Partition("t", nil, 0, 5); got < 0 || got >= 5 {
			t.Fatalf("keyless partition %d out of range", got)
		}
	}
}

// fnvSum is the plain 32-bit FNV-1a of key read as int32, modulo MaxInt32:
// different from sarama's partition exactly when the hash is negative.
func fnvSum(key []byte) int32 {
	h := uint32(2166136261)
	for _, c := range key {
		h ^= uint32(c)
		h *= 16777619
	}
	return int32(h) % math.MaxInt32
}

func TestDefaultPartitionerKeylessIsSticky(t *testing.T) {
	p := NewDefaultPartitioner(100)
	first := p.Partition("t", nil, 10, 8)
	// 10 records of 10 bytes fill batch.size; all stay on first.
	for i := 1; i < 10; i++ {
		if got := p.Partition("t", nil, 10, 8); got != first {
			t.Fatalf("record %d went to %d, want sticky partition %d", i, got, first)
		}
	}
	if got := p.Partition("t", nil, 10, 8); got == first {
		t.Fatalf("record 11 stayed on %d after batch.size bytes", got)
	}
	// A non-nil empty key is a key: Java hashes it.
	want := (Murmur2(nil) & 0x7fffffff) % 8
	if got := p.Partition("t", []byte{}, 10, 8); got != want {
		t.Errorf("empty key went to %d, want murmur2 partition %d", got, want)
	}
}

func TestStickySwitchesAfterBatchSize(t *testing.T) {
	tests := []struct {
		name      string
		batchSize int
		keyLen    int
		valueLen  int
		perSwitch int // records on one partition before it switches
	}{
		{"exact fill", 100, 0, 10, 10},
		{"key counts", 100, 5, 5, 10},
		{"overshoot", 100, 0, 30, 4},
		{"one large record", 100, 0, 1000, 1},
		{"default batch.size", 0, 0, 16384 / 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewUniformStickyPartitioner(tt.batchSize)
			key := make([]byte, tt.keyLen)
			prev := int32(-1)
			for sw := range 20 {
				cur := p.Partition("t", key, tt.valueLen, 5)
				if cur == prev {
					t.Fatalf("switch %d: stayed on partition %d", sw, cur)
				}
				for i := 1; i < tt.perSwitch; i++ {
					if got := p.Partition("t", key, tt.valueLen, 5); got != cur {
						t.Fatalf("switch %d record %d: went to %d, want %d", sw, i, got, cur)
					}
				}
				prev = cur
			}
		})
	}
}

func TestStickySpreadsOverPartitions(t *testing.T) {
	const n, switches = 8, 4000
	p := NewUniformStickyPartitioner(1)
	counts := make([]int, n)
	for range switches {
		counts[p.Partition("t", nil, 1, n)]++
	}
	// Each partition expects 500 picks (stddev ~21): 300..700 cannot fail by
	// chance but does fail for a partitioner that favours or skips some.
	for i, c := range counts {
		if c < 300 || c > 700 {
			t.Errorf("partition %d chosen %d times of %d, want about %d: %v", i, c, switches, switches/n, counts)
		}
	}
}

func TestStickyTopicsAndPartitionCountChanges(t *testing.T) {
	p := NewUniformStickyPartitioner(1000)
	a := p.Partition("a", nil, 1, 1000)
	// Topic b's records do not move topic a's sticky partition.
	for range 100 {
		p.Partition("b", nil, 1, 1000)
	}
	if got := p.Partition("a", nil, 1, 1000); got != a {
		t.Errorf("topic a moved from %d to %d because of topic b", a, got)
	}
	// Fewer partitions than the sticky one: choose again, in range.
	for range 50 {
		if got := p.Partition("a", nil, 1, 1); got != 0 {
			t.Fatalf("one partition: got %d", got)
		}
	}
}

func TestRoundRobinPartitioner(t *testing.T) {
	p, err := PartitionerByName("round_robin", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		// Keys are ignored, as in Java's RoundRobinPartitioner.
		if got, want := p.Partition("a", []byte("same key"), 0, 5), int32(i%5); got != want {
			t.Fatalf("topic a record %d: got %d, want %d", i, got, want)
		}
	}
	if got := p.Partition("b", nil, 0, 5); got != 0 {
		t.Errorf("topic b starts at %d, want 0", got)
	}
}

func TestPartitionerByName(t *testing.T) {
	for _, name := range []string{"", "default", "org.apache.kafka.clients.producer.internals.DefaultPartitioner",
		"uniform_sticky", "org.apache.kafka.clients.producer.UniformStickyPartitioner",
		"round_robin", "org.apache.kafka.clients.producer.RoundRobinPartitioner", "sarama",
		"random", "consistent", "consistent_random", "murmur2", "murmur2_random", "fnv1a", "fnv1a_random"} {
		p, err := PartitionerByName(name, 0)
		if err != nil {
			t.Errorf("%q: %v", name, err)
			continue
		}
		for _, key := range [][]byte{nil, {}, []byte("k")} {
			if got := p.Partition("t", key, 1, 3); got < 0 || got >= 3 {
				t.Errorf("%q key %q: partition %d out of range", name, key, got)
			}
			if got := p.Partition("t", key, 1, 0); got != kafkit.AnyPartition {
				t.Errorf("%q key %q, no partitions: got %d, want AnyPartition", name, key, got)
			}
		}
	}
	if _, err := PartitionerByName("murmur3", 0); err == nil || !strings.Contains(err.Error(), "partitioner") || !strings.Contains(err.Error(), "murmur3") {
		t.Errorf("unknown name: err = %v, want one naming partitioner and the value", err)
	}
	// The default keys like Java and sticks when keyless.
	def, _ := PartitionerByName("", 100)
	if got, want := def.Partition("t", []byte("foobar"), 0, 17), int32((-790332482&0x7fffffff)%17); got != want {
		t.Errorf("default keyed: got %d, want %d", got, want)
	}
}

func TestPartitionersConcurrent(t *testing.T) {
	ps := []Partitioner{NewDefaultPartitioner(50), NewRoundRobinPartitioner(), NewUniformStickyPartitioner(10), NewSaramaHashPartitioner()}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				for _, p := range ps {
					var key []byte
					if i%2 == 0 {
						key = []byte{byte(i), byte(g)}
					}
					if got := p.Partition([]string{"a", "b", "c"}[i%3], key, i%20, 7); got < 0 || got >= 7 {
						t.Errorf("partition %d out of range", got)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkPartitioners(b *testing.B) {
	key := []byte("user-1234567890")
	for _, bc := range []struct {
		name string
		p    Partitioner
		key  []byte
	}{
		{"default/keyed", NewDefaultPartitioner(0), key},
		{"default/keyless", NewDefaultPartitioner(0), nil},
		{"sarama/keyed", NewSaramaHashPartitioner(), key},
		{"round_robin", NewRoundRobinPartitioner(), key},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bc.p.Partition("topic", bc.key, 100, 12)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// The sticky partitioner's partition and byte count move together by
// compare-and-swap: under concurrent Sends every record still counts, so
// each stint holds exactly batchSize bytes when sizes divide it, and the
// count left at the end says so.
func TestStickyConcurrentCountsEveryRecord(t *testing.T) {
	const goroutines, perGoroutine, size, perStint = 4, 50000, 10, 7
	p := NewUniformStickyPartitioner(size * perStint).(*stickyPartitioner)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range perGoroutine {
				if got := p.Partition("t", nil, size, 5); got < 0 || got >= 5 {
					t.Errorf("partition %d out of range", got)
					return
				}
			}
		})
	}
	wg.Wait()
	total := goroutines * perGoroutine
	if got, want := uint32(p.topic("t").state.Load()), uint32(((total-1)%perStint+1)*size); got != want {
		t.Fatalf("bytes on the last sticky partition: %d, want %d (a record was counted twice or lost)", got, want)
	}
}
