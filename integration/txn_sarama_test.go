package integration

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kafkit/kafkit/broker"
)

// txnConfig is a sarama transactional producer config.
func txnConfig(id string) *sarama.Config {
	cfg := saramaConfig()
	cfg.Producer.Transaction.ID = id
	cfg.Producer.Transaction.Timeout = 10 * time.Second
	cfg.Producer.Transaction.Retry.Backoff = 20 * time.Millisecond
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Retry.Backoff = 20 * time.Millisecond
	return cfg
}

func newTxnProducer(t *testing.T, addr string, cfg *sarama.Config) sarama.SyncProducer {
	t.Helper()
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("transactional producer %s: %v", cfg.Producer.Transaction.ID, err)
	}
	return p
}

// consumeValues reads every partition of topic from the start at the given
// isolation level until want values arrived and nothing more comes for a
// moment, and returns them sorted.
func consumeValues(t *testing.T, addr, topic string, partitions int32, level sarama.IsolationLevel, want int) []string {
	t.Helper()
	cfg := saramaConfig()
	cfg.Consumer.IsolationLevel = level
	cfg.Consumer.MaxWaitTime = 50 * time.Millisecond
	consumer, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var mu sync.Mutex // guards out
	var out []string
	var wg sync.WaitGroup
	done := make(chan struct{})
	for p := range partitions {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			for {
				select {
				case m := <-pc.Messages():
					mu.Lock()
					out = append(out, string(m.Value))
					mu.Unlock()
				case <-done:
					return
				}
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(out) }
	deadline := time.Now().Add(20 * time.Second)
	for count() < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // anything beyond want would show up now
	close(done)
	wg.Wait()
	sort.Strings(out)
	return out
}

func groupOffsets(t *testing.T, addr, group, topic string, partitions int32) []int64 {
	t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ps := make([]int32, partitions)
	for i := range ps {
		ps[i] = int32(i)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: ps})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, partitions)
	for i := range out {
		b := resp.GetBlock(topic, int32(i))
		if b == nil || b.Err != sarama.ErrNoError {
			t.Fatalf("offset of %s/%s/%d: %+v", group, topic, i, b)
		}
		out[i] = b.Offset
	}
	return out
}

// listLatest asks ListOffsets for the latest offset at an isolation level
// (0 read_uncommitted, 1 read_committed).
func listLatest(t *testing.T, addr, topic string, partition int32, isolation int8) int64 {
	t.Helper()
	return listOffset(t, addr, topic, partition, isolation, -1)
}

// listOffset asks ListOffsets for timestamp ts (or a special one) at an
// isolation level.
func listOffset(t *testing.T, addr, topic string, partition int32, isolation int8, ts int64) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	off, err := queryOffset(context.Background(), cl, topic, partition, isolation, ts)
	if err != nil {
		t.Fatalf("ListOffsets: %v", err)
	}
	return off
}

// queryOffset sends ListOffsets through cl, which routes it to the
// partition's leader.
func queryOffset(ctx context.Context, cl *kgo.Client, topic string, partition int32, isolation int8, ts int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = isolation
	req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: topic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: partition, Timestamp: ts, CurrentLeaderEpoch: -1}}}}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	p := resp.Topics[0].Partitions[0]
	return p.Offset, kerr.ErrorForCode(p.ErrorCode)
}

// rawProduce sends one batch (CRC and length filled in) and returns the
// partition's error code.
func rawProduce(t *testing.T, addr, topic string, partition int32, batch kmsg.RecordBatch) int16 {
	t.Helper()
	// Produce v13 names topics by id; v12 still by name.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.MaxVersions(kversion.V3_7_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	raw := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: partition, Records: raw}}}}
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// TestSaramaTransactions: records on 3 partitions and a group's offsets
// committed in one transaction, then an aborted one; read_committed sees
// only committed records, read_uncommitted sees every record (the markers
// skipped), and the group's offsets move only with the commit.
func TestSaramaTransactions(t *testing.T) {
	b := broker.NewTest(t)
	createTopic(t, b.Addr(), "stx", 3)
	p := newTxnProducer(t, b.Addr(), txnConfig("sarama-tx"))
	defer p.Close()

	send := func(prefix string, n int) {
		t.Helper()
		for i := range n {
			_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "stx", Partition: int32(i % 3), Value: sarama.StringEncoder(prefix + strconv.Itoa(i))})
			if err != nil {
				t.Fatalf("send %s%d: %v", prefix, i, err)
			}
		}
	}
	offsets := func(off int64) map[string][]*sarama.PartitionOffsetMetadata {
		return map[string][]*sarama.PartitionOffsetMetadata{"src": {{Partition: 0, Offset: off}}}
	}
	createTopic(t, b.Addr(), "src", 1)

	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	send("c", 30)
	if err := p.AddOffsetsToTxn(offsets(42), "txn-group"); err != nil {
		t.Fatal(err)
	}
	if got := groupOffsets(t, b.Addr(), "txn-group", "src", 1); got[0] != -1 {
		t.Fatalf("offset visible before the commit: %d", got[0])
	}
	if got := consumeValues(t, b.Addr(), "stx", 3, sarama.ReadCommitted, 0); len(got) != 0 {
		t.Fatalf("read_committed saw %d records of an open transaction", len(got))
	}
	if lso, hw := listLatest(t, b.Addr(), "stx", 0, 1), listLatest(t, b.Addr(), "stx", 0, 0); lso != 0 || hw != 10 {
		t.Fatalf("ListOffsets latest during the transaction: read_committed %d, read_uncommitted %d; want 0 and 10", lso, hw)
	}
	if committed, all := listOffset(t, b.Addr(), "stx", 0, 1, 0), listOffset(t, b.Addr(), "stx", 0, 0, 0); committed != -1 || all != 0 {
		t.Fatalf("ListOffsets by timestamp during the transaction: read_committed %d, read_uncommitted %d; want -1 and 0", committed, all)
	}
	// A client may not write a marker itself.
	ctl := kmsg.RecordBatch{Magic: 2, Attributes: 0x30, ProducerID: 1, FirstSequence: -1, NumRecords: 1, LastOffsetDelta: 0,
		Records: (&kmsg.Record{Key: (&kmsg.ControlRecordKey{Type: 1}).AppendTo(nil), Value: (&kmsg.EndTxnMarker{}).AppendTo(nil)}).AppendTo(nil)}
	if code := rawProduce(t, b.Addr(), "stx", 0, ctl); code != kerr.InvalidRecord.Code {
		t.Fatalf("produce of a control batch: error %d, want INVALID_RECORD", code)
	}
	if err := p.CommitTxn(); err != nil {
		t.Fatal(err)
	}
	if got := groupOffsets(t, b.Addr(), "txn-group", "src", 1); got[0] != 42 {
		t.Fatalf("offset after the commit: %d, want 42", got[0])
	}

	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	send("a", 12)
	if err := p.AddOffsetsToTxn(offsets(99), "txn-group"); err != nil {
		t.Fatal(err)
	}
	if err := p.AbortTxn(); err != nil {
		t.Fatal(err)
	}
	if got := groupOffsets(t, b.Addr(), "txn-group", "src", 1); got[0] != 42 {
		t.Fatalf("offset after the abort: %d, want 42", got[0])
	}
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	send("d", 6)
	if err := p.CommitTxn(); err != nil {
		t.Fatal(err)
	}

	committed := consumeValues(t, b.Addr(), "stx", 3, sarama.ReadCommitted, 36)
	if len(committed) != 36 {
		t.Fatalf("read_committed saw %d records, want 36", len(committed))
	}
	for _, v := range committed {
		if v[0] == 'a' {
			t.Fatalf("read_committed saw aborted record %q", v)
		}
	}
	if all := consumeValues(t, b.Addr(), "stx", 3, sarama.ReadUncommitted, 48); len(all) != 48 {
		t.Fatalf("read_uncommitted saw %d records, want 48", len(all))
	}
}

// TestSaramaZombieFencing: a second producer with the same transactional.id
// fences the first, whose open transaction is aborted; the first gets a
// fatal error.
func TestSaramaZombieFencing(t *testing.T) {
	b := broker.NewTest(t)
	createTopic(t, b.Addr(), "zombie", 1)
	cfg := txnConfig("zombie-tx")
	cfg.Producer.Transaction.Retry.Max = 3
	first := newTxnProducer(t, b.Addr(), cfg)
	defer first.Close()
	if err := first.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := first.SendMessage(&sarama.ProducerMessage{Topic: "zombie", Value: sarama.StringEncoder("zombie-1")}); err != nil {
		t.Fatal(err)
	}

	second := newTxnProducer(t, b.Addr(), txnConfig("zombie-tx"))
	defer second.Close()
	if err := second.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := second.SendMessage(&sarama.ProducerMessage{Topic: "zombie", Value: sarama.StringEncoder("live-1")}); err != nil {
		t.Fatal(err)
	}
	if err := second.CommitTxn(); err != nil {
		t.Fatal(err)
	}

	// Kafka's sequence: the zombie's produce fails with
	// INVALID_PRODUCER_EPOCH (abortable, KIP-588), its commit cannot go on,
	// and the abort's epoch bump is answered PRODUCER_FENCED: fatal.
	_, _, sendErr := first.SendMessage(&sarama.ProducerMessage{Topic: "zombie", Value: sarama.StringEncoder("zombie-2")})
	if !errors.Is(sendErr, sarama.ErrInvalidProducerEpoch) {
		t.Fatalf("send by the fenced producer: %v, want INVALID_PRODUCER_EPOCH", sendErr)
	}
	if err := first.CommitTxn(); err == nil {
		t.Fatal("the fenced producer committed")
	}
	abortErr := first.AbortTxn()
	if !errors.Is(abortErr, sarama.ErrProducerFenced) || first.TxnStatus()&sarama.ProducerTxnFlagFatalError == 0 {
		t.Fatalf("abort by the fenced producer: %v, status %v; want PRODUCER_FENCED and a fatal state", abortErr, first.TxnStatus())
	}
	got := consumeValues(t, b.Addr(), "zombie", 1, sarama.ReadCommitted, 1)
	if len(got) != 1 || got[0] != "live-1" {
		t.Fatalf("read_committed after fencing: %v, want only live-1", got)
	}
}

// TestSaramaConsumeTransformProduce runs an exactly-once pipeline with
// sarama (AddMessageToTxn commits the input offsets with the outputs),
// abandons its producer in the middle of a transaction, restarts from the
// committed offsets with a new producer of the same transactional.id, and
// checks the output holds every input exactly once.
func TestSaramaConsumeTransformProduce(t *testing.T) {
	b := broker.NewTest(t)
	const n, group = 300, "ctp-group"
	createTopic(t, b.Addr(), "ctp-in", 2)
	createTopic(t, b.Addr(), "ctp-out", 2)
	produceSeq(t, b.Addr(), "ctp-in", 0, n)

	// run processes up to limit inputs per partition in transactions of
	// batch records; with crash it leaves its last transaction open and
	// returns the producer without closing it.
	run := func(limit int, crash bool) sarama.SyncProducer {
		cfg := txnConfig("ctp-tx")
		p := newTxnProducer(t, b.Addr(), cfg)
		consumer, err := sarama.NewConsumer([]string{b.Addr()}, saramaConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer consumer.Close()
		start := groupOffsets(t, b.Addr(), group, "ctp-in", 2)
		for part := range int32(2) {
			from := start[part]
			if from < 0 {
				from = sarama.OffsetOldest
			}
			pc, err := consumer.ConsumePartition("ctp-in", part, from)
			if err != nil {
				t.Fatal(err)
			}
			done := 0
			for done < limit {
				if err := p.BeginTxn(); err != nil {
					t.Fatal(err)
				}
				batch := 0
				for ; batch < 10 && done < limit; batch++ {
					var m *sarama.ConsumerMessage
					select {
					case m = <-pc.Messages():
					case <-time.After(300 * time.Millisecond):
					}
					if m == nil {
						break
					}
					out := &sarama.ProducerMessage{Topic: "ctp-out", Partition: part, Value: sarama.StringEncoder("out-" + string(m.Value))}
					if _, _, err := p.SendMessage(out); err != nil {
						t.Fatal(err)
					}
					if err := p.AddMessageToTxn(m, group, nil); err != nil {
						t.Fatal(err)
					}
					done++
				}
				if batch == 0 {
					if err := p.AbortTxn(); err != nil {
						t.Fatal(err)
					}
					break
				}
				if crash && part == 1 && done >= limit {
					pc.Close()
					return p // mid-transaction: outputs written, nothing committed
				}
				if err := p.CommitTxn(); err != nil {
					t.Fatal(err)
				}
			}
			pc.Close()
		}
		return p
	}
	zombie := run(45, true)
	defer zombie.Close()
	final := run(n, false)
	if err := final.Close(); err != nil {
		t.Fatal(err)
	}

	got := consumeValues(t, b.Addr(), "ctp-out", 2, sarama.ReadCommitted, n)
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	for i := range n {
		if c := seen["out-"+strconv.Itoa(i)]; c != 1 {
			t.Errorf("input %d appears %d times in the committed output", i, c)
		}
	}
	if len(got) != n {
		t.Fatalf("committed output has %d records, want %d", len(got), n)
	}
	if all := consumeValues(t, b.Addr(), "ctp-out", 2, sarama.ReadUncommitted, n+1); len(all) <= n {
		t.Fatalf("read_uncommitted output has %d records; the abandoned transaction's should be there too", len(all))
	}
}

// rawTxnOffsets commits a group's offset of topic partition 0 in a
// transaction of its own through raw requests (InitProducerId with a 2 s
// timeout, AddOffsetsToTxn, TxnOffsetCommit) and then commits (end 0),
// aborts (1) or leaves it open (2).
func rawTxnOffsets(t *testing.T, addr, txnID, group, topic string, offset int64, end int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	check := func(what string, err error, code func() int16) {
		t.Helper()
		if err == nil {
			err = kerr.ErrorForCode(code())
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &txnID, 2000
	ir, err := init.RequestWith(ctx, cl)
	check("InitProducerId", err, func() int16 { return ir.ErrorCode })
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, ir.ProducerID, ir.ProducerEpoch, group
	ar, err := add.RequestWith(ctx, cl)
	check("AddOffsetsToTxn", err, func() int16 { return ar.ErrorCode })
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = txnID, group, ir.ProducerID, ir.ProducerEpoch
	commit.Generation = -1
	commit.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
	cr, err := commit.RequestWith(ctx, cl)
	check("TxnOffsetCommit", err, func() int16 {
		if len(cr.Topics) != 1 || len(cr.Topics[0].Partitions) != 1 {
			t.Fatalf("TxnOffsetCommit response %+v", cr)
		}
		return cr.Topics[0].Partitions[0].ErrorCode
	})
	if end == 2 {
		return
	}
	et := kmsg.NewPtrEndTxnRequest()
	et.TransactionalID, et.ProducerID, et.ProducerEpoch, et.Commit = txnID, ir.ProducerID, ir.ProducerEpoch, end == 0
	er, err := et.RequestWith(ctx, cl)
	check("EndTxn", err, func() int16 { return er.ErrorCode })
}

// TestTransactionSurvivesBrokerCrash leaves a transaction open when the
// broker goes away (closed in process, or SIGKILLed as a child process),
// starts a broker on the same data directory, and checks that the
// transaction is aborted after transaction.timeout.ms so read_committed
// consumers move past it to what was committed later.
func TestTransactionSurvivesBrokerCrash(t *testing.T) {
	cases := []struct {
		name  string
		start func(t *testing.T, dir string) (addr string, crash func())
	}{
		{"closed in process", func(t *testing.T, dir string) (string, func()) {
			b := broker.NewTest(t, broker.OnDisk(), broker.WithConfig(func(c *broker.Config) { c.DataDir = dir }))
			return b.Addr(), func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := b.Close(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"SIGKILL", func(t *testing.T, dir string) (string, func()) {
			if testing.Short() {
				t.Skip("builds and runs cmd/broker as a child process")
			}
			p := startBrokerProcess(t, dir)
			return p.addr, p.kill
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			addr, crash := tc.start(t, dir)
			createTopic(t, addr, "crash-txn", 1)
			cfg := txnConfig("crash-tx")
			cfg.Producer.Transaction.Timeout = 2 * time.Second
			cfg.Producer.Transaction.Retry.Max = 2
			p := newTxnProducer(t, addr, cfg)
			// sendAll runs a transaction of n records and the group's
			// offset (unless negative), committed, aborted or left open.
			const commit, abort, leaveOpen = 0, 1, 2
			sendAll := func(p sarama.SyncProducer, prefix string, n int, offset int64, end int) {
				t.Helper()
				if err := p.BeginTxn(); err != nil {
					t.Fatal(err)
				}
				for i := range n {
					if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "crash-txn", Value: sarama.StringEncoder(prefix + strconv.Itoa(i))}); err != nil {
						t.Fatal(err)
					}
				}
				if offset >= 0 {
					o := map[string][]*sarama.PartitionOffsetMetadata{"crash-txn": {{Partition: 0, Offset: offset}}}
					if err := p.AddOffsetsToTxn(o, "crash-group"); err != nil {
						t.Fatal(err)
					}
				}
				var err error
				switch end {
				case commit:
					err = p.CommitTxn()
				case abort:
					err = p.AbortTxn()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			sendAll(p, "before-", 5, 42, commit)
			sendAll(p, "aborted-", 3, 99, abort)
			sendAll(p, "open-", 5, 77, leaveOpen)
			// sarama sends transactional offsets only when it commits;
			// raw requests put aborted and open ones in __consumer_offsets.
			rawTxnOffsets(t, addr, "raw-aborted", "crash-group", "crash-txn", 99, abort)
			rawTxnOffsets(t, addr, "raw-open", "crash-group", "crash-txn", 77, leaveOpen)
			crash()
			p.Close() // fails to abort: the broker is gone

			addr, _ = tc.start(t, dir)
			// The replay of __consumer_offsets applies only the committed
			// transaction's offsets.
			waitFor(t, 10*time.Second, "the group's committed offset", func() bool {
				return groupOffsets(t, addr, "crash-group", "crash-txn", 1)[0] == 42
			})
			// The open transaction holds the stable offset back...
			if got := consumeValues(t, addr, "crash-txn", 1, sarama.ReadCommitted, 5); len(got) != 5 {
				t.Fatalf("read_committed right after the restart: %v", got)
			}
			other := newTxnProducer(t, addr, txnConfig("crash-other"))
			defer other.Close()
			sendAll(other, "after-", 5, -1, commit)
			// ...until it times out and is aborted.
			got := consumeValues(t, addr, "crash-txn", 1, sarama.ReadCommitted, 10)
			if len(got) != 10 {
				t.Fatalf("read_committed after the timeout: %v", got)
			}
			for _, v := range got {
				if v[0] == 'o' || v[0] == 'a' && v[1] == 'b' {
					t.Fatalf("read_committed saw %q of the aborted transaction", v)
				}
			}
			if all := consumeValues(t, addr, "crash-txn", 1, sarama.ReadUncommitted, 18); len(all) != 18 {
				t.Fatalf("read_uncommitted: %v", all)
			}
			if got := groupOffsets(t, addr, "crash-group", "crash-txn", 1)[0]; got != 42 {
				t.Fatalf("group offset after the open transaction was aborted: %d, want 42", got)
			}
			// The transactional id still works after the restart.
			again := newTxnProducer(t, addr, txnConfig("crash-tx"))
			defer again.Close()
			sendAll(again, "later-", 2, 50, commit)
			if got := groupOffsets(t, addr, "crash-group", "crash-txn", 1)[0]; got != 50 {
				t.Fatalf("group offset after a commit on the restarted broker: %d, want 50", got)
			}
		})
	}
}
