package broker

// Issue 23: the group and transaction coordinators in the failure and edge
// cases where Kafka's GroupCoordinator and TransactionCoordinator keep
// exactly-once and committed offsets, each over TCP.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/coordinator"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// txnProducer is a transactional producer driven by hand.
type txnProducer struct {
	c     *rawConn
	id    string
	pid   int64
	epoch int16
	seq   map[string]int32 // next sequence per "topic/partition"
}

// initTxn runs InitProducerId for id, waiting out the coordinator's load.
func initTxn(t *testing.T, c *rawConn, id string) *txnProducer {
	t.Helper()
	p := &txnProducer{c: c, id: id, pid: -1, epoch: -1}
	p.reinit(t)
	return p
}

// reinit is InitProducerId again (v2, without the current id): a new epoch,
// fencing every older instance.
func (p *txnProducer) reinit(t *testing.T) int16 {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.SetVersion(2)
	req.TransactionalID, req.TransactionTimeoutMillis = &p.id, 60_000
	var resp *kmsg.InitProducerIDResponse
	for i := 0; i < 500; i++ {
		resp = p.c.roundTrip(req).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != kerr.CoordinatorLoadInProgress.Code && resp.ErrorCode != kerr.ConcurrentTransactions.Code {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if resp.ErrorCode == 0 {
		p.pid, p.epoch, p.seq = resp.ProducerID, resp.ProducerEpoch, map[string]int32{}
	}
	return resp.ErrorCode
}

func (p *txnProducer) addPartitions(t *testing.T, topic string, partitions ...int32) {
	t.Helper()
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.SetVersion(3)
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = p.id, p.pid, p.epoch
	req.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: topic, Partitions: partitions}}
	for _, rt := range p.c.roundTrip(req).(*kmsg.AddPartitionsToTxnResponse).Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("AddPartitionsToTxn %s-%d: %v", rt.Topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
			}
		}
	}
}

func (p *txnProducer) addOffsets(t *testing.T, group string) {
	t.Helper()
	req := kmsg.NewPtrAddOffsetsToTxnRequest()
	req.SetVersion(3)
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = p.id, p.pid, p.epoch, group
	if r := p.c.roundTrip(req).(*kmsg.AddOffsetsToTxnResponse); r.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// commitOffset is TxnOffsetCommit of one partition; it returns the
// partition's error code.
func (p *txnProducer) commitOffset(t *testing.T, group, member string, generation int32, topic string, offset int64) int16 {
	t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.SetVersion(3)
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = p.id, group, p.pid, p.epoch
	req.MemberID, req.Generation = member, generation
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
	return p.c.roundTrip(req).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

func (p *txnProducer) endTxn(t *testing.T, commit bool) int16 {
	t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.SetVersion(3)
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = p.id, p.pid, p.epoch, commit
	return p.c.roundTrip(req).(*kmsg.EndTxnResponse).ErrorCode
}

// produce sends one transactional record to a partition and returns the
// partition's error code.
func (p *txnProducer) produce(t *testing.T, topic string, partition int32) int16 {
	t.Helper()
	key := fmt.Sprintf("%s/%d", topic, partition)
	bld := recordbatch.NewBuilder(recordbatch.Options{Transactional: true}, 0)
	bld.Append(time.Now().UnixMilli(), nil, []byte("v"), nil)
	batch, err := bld.Finish(recordbatch.Producer{ID: p.pid, Epoch: p.epoch, BaseSequence: p.seq[key]})
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.TransactionID, req.Acks, req.TimeoutMillis = &p.id, -1, 10_000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: partition, Records: batch}}}}
	code := p.c.roundTrip(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	if code == 0 {
		p.seq[key]++
	}
	return code
}

// stableAndHigh returns a partition's last stable offset and high watermark.
func stableAndHigh(t *testing.T, c *rawConn, topic string, partition int32) (int64, int64) {
	t.Helper()
	offset := func(isolation int8) int64 {
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(5)
		req.ReplicaID, req.IsolationLevel = -1, isolation
		req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: topic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: partition, Timestamp: -1, CurrentLeaderEpoch: -1}}}}
		rp := c.roundTrip(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if rp.ErrorCode != 0 {
			t.Fatalf("ListOffsets %s-%d: %v", topic, partition, kerr.ErrorForCode(rp.ErrorCode))
		}
		return rp.Offset
	}
	return offset(1), offset(0)
}

// fetchStable is OffsetFetch with RequireStable of partition 0 of topic,
// once the group coordinator has loaded; a group error comes as the
// partition's.
func fetchStable(c *rawConn, group, topic string) kmsg.OffsetFetchResponseGroupTopicPartition {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.SetVersion(8)
	req.RequireStable = true
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}}}
	for i := 0; ; i++ {
		g := c.roundTrip(req).(*kmsg.OffsetFetchResponse).Groups[0]
		if g.ErrorCode == kerr.CoordinatorLoadInProgress.Code && i < 500 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if g.ErrorCode != 0 {
			return kmsg.OffsetFetchResponseGroupTopicPartition{Offset: -1, ErrorCode: g.ErrorCode}
		}
		return g.Topics[0].Partitions[0]
	}
}

func simpleCommit(t *testing.T, c *rawConn, group, topic string, offset int64) {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(8)
	req.Group, req.Generation = group, -1
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
	for i := 0; ; i++ {
		code := c.roundTrip(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
		if code == 0 {
			return
		}
		if code != kerr.CoordinatorLoadInProgress.Code || i == 500 {
			t.Fatalf("OffsetCommit: %v", kerr.ErrorForCode(code))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRequireStableNeverAnswersAnOldOffset (case 1): an OffsetFetch with
// RequireStable sent after a TxnOffsetCommit was acknowledged answers
// UNSTABLE_OFFSET_COMMIT or that offset (once committed), never the one
// before, however it interleaves with the commit.
func TestRequireStableNeverAnswersAnOldOffset(t *testing.T) {
	b := NewTest(t)
	c := dial(t, b)
	createTestTopic(t, b, "in", 1)
	p := initTxn(t, c, "tx")
	var acked atomic.Int64 // last offset whose TxnOffsetCommit was answered
	acked.Store(-1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	done := make(chan struct{})
	stale := make(chan string, 4)
	var fetchers sync.WaitGroup
	for range 4 {
		fetchers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				floor := acked.Load()
				req := kmsg.NewPtrOffsetFetchRequest()
				req.SetVersion(7)
				req.Group, req.RequireStable = "g", true
				req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "in", Partitions: []int32{0}}}
				resp, err := req.RequestWith(context.Background(), cl)
				if err != nil || resp.ErrorCode != 0 {
					continue
				}
				if rp := resp.Topics[0].Partitions[0]; rp.ErrorCode == 0 && rp.Offset < floor {
					stale <- fmt.Sprintf("answered %d as stable after the TxnOffsetCommit of %d was acknowledged", rp.Offset, floor)
					return
				}
			}
		})
	}
	const txns = 1000
	for i := int64(0); i < txns; i++ {
		p.addOffsets(t, "g")
		if code := p.commitOffset(t, "g", "", -1, "in", i); code != 0 {
			t.Fatalf("TxnOffsetCommit: %v", kerr.ErrorForCode(code))
		}
		acked.Store(i)
		if code := p.endTxn(t, true); code != 0 {
			t.Fatalf("EndTxn: %v", kerr.ErrorForCode(code))
		}
	}
	close(done)
	fetchers.Wait()
	close(stale)
	for msg := range stale {
		t.Error(msg)
	}
	if rp := fetchStable(c, "g", "in"); rp.ErrorCode != 0 || rp.Offset != txns-1 {
		t.Fatalf("at the end: %v offset %d, want %d", kerr.ErrorForCode(rp.ErrorCode), rp.Offset, txns-1)
	}
}

// TestTransactionalProduceVerified (case 2, KIP-890 part 1): a
// transactional batch for a partition not in the producer's transaction,
// or after its marker, is refused with INVALID_TXN_STATE and leaves the
// partition's LSO alone; with transaction.partition.verification.enable
// false it is written as before.
func TestTransactionalProduceVerified(t *testing.T) {
	b := NewTest(t)
	c := dial(t, b)
	createTestTopic(t, b, "v", 2)
	p := initTxn(t, c, "tx")
	p.addPartitions(t, "v", 0)
	if code := p.produce(t, "v", 0); code != 0 {
		t.Fatalf("produce to an added partition: %v", kerr.ErrorForCode(code))
	}
	if code := p.produce(t, "v", 1); code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce to a partition never added: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	if code := p.endTxn(t, true); code != 0 {
		t.Fatalf("EndTxn: %v", kerr.ErrorForCode(code))
	}
	if code := p.produce(t, "v", 0); code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce after the commit marker: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	for part := range int32(2) {
		if lso, hw := stableAndHigh(t, c, "v", part); lso != hw {
			t.Errorf("v-%d: LSO %d, high watermark %d: a transaction stays open", part, lso, hw)
		}
	}
	// A zombie: fenced by a new instance, its late batch is refused.
	zombie := *p
	p.reinit(t)
	p.addPartitions(t, "v", 1)
	if code := zombie.produce(t, "v", 1); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("produce of a fenced instance: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}

	off := NewTest(t, WithConfig(func(c *Config) { c.TxnPartitionVerification = false }))
	oc := dial(t, off)
	createTestTopic(t, off, "v", 1)
	q := initTxn(t, oc, "tx")
	if code := q.produce(t, "v", 0); code != 0 {
		t.Fatalf("verification disabled: %v", kerr.ErrorForCode(code))
	}
}

// TestVerifyOnlyAnswersPerPartition (low): AddPartitionsToTxn v4 with
// VerifyOnly, as a partition leader sends it, answers each partition:
// INVALID_TXN_STATE only for those not in the transaction.
func TestVerifyOnlyAnswersPerPartition(t *testing.T) {
	b := NewTest(t)
	c := dial(t, b)
	createTestTopic(t, b, "v", 2)
	p := initTxn(t, c, "tx")
	p.addPartitions(t, "v", 1)
	verify := kmsg.NewPtrAddPartitionsToTxnRequest()
	verify.SetVersion(4)
	verify.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{{TransactionalID: p.id, ProducerID: p.pid, ProducerEpoch: p.epoch, VerifyOnly: true,
		Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "v", Partitions: []int32{0, 1}}}}}
	got := map[int32]int16{}
	for _, rp := range c.roundTrip(verify).(*kmsg.AddPartitionsToTxnResponse).Transactions[0].Topics[0].Partitions {
		got[rp.Partition] = rp.ErrorCode
	}
	if got[0] != kerr.InvalidTxnState.Code || got[1] != 0 {
		t.Fatalf("VerifyOnly of v-0 (not added) and v-1 (added): %v", got)
	}
}

// TestFencingAtTheLastEpochAbortsUnderTheOldID (case 3): InitProducerId
// fencing a transaction at epoch 32766 writes its abort markers under the
// transaction's producer id (epoch 32767), so its partitions and offsets
// are released, and then hands out a new producer id at epoch 0.
func TestFencingAtTheLastEpochAbortsUnderTheOldID(t *testing.T) {
	b := NewTest(t)
	c := dial(t, b)
	createTestTopic(t, b, "e", 1)
	p := initTxn(t, c, "tx")
	first := p.pid
	// Up to epoch 32766, pipelined: each InitProducerId bumps the epoch.
	init := kmsg.NewPtrInitProducerIDRequest()
	init.SetVersion(2)
	init.TransactionalID, init.TransactionTimeoutMillis = &p.id, 60_000
	for p.epoch < 32766 {
		n := min(1000, 32766-int(p.epoch))
		corrs := make([]int32, n)
		for i := range corrs {
			corrs[i] = c.send(init)
		}
		for _, corr := range corrs {
			body, err := c.read(corr, init.IsFlexible())
			if err != nil {
				t.Fatal(err)
			}
			resp := init.ResponseKind().(*kmsg.InitProducerIDResponse)
			resp.SetVersion(2)
			if err := resp.ReadFrom(body); err != nil {
				t.Fatal(err)
			}
			if resp.ErrorCode != 0 || resp.ProducerID != first || resp.ProducerEpoch != p.epoch+1 {
				t.Fatalf("InitProducerId after epoch %d: %v, producer id %d epoch %d", p.epoch, kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch)
			}
			p.epoch = resp.ProducerEpoch
		}
	}
	p.addPartitions(t, "e", 0)
	if code := p.produce(t, "e", 0); code != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(code))
	}
	p.addOffsets(t, "g")
	if code := p.commitOffset(t, "g", "", -1, "e", 5); code != 0 {
		t.Fatalf("TxnOffsetCommit: %v", kerr.ErrorForCode(code))
	}
	if code := p.reinit(t); code != 0 {
		t.Fatalf("fencing InitProducerId: %v", kerr.ErrorForCode(code))
	}
	if p.pid == first || p.epoch != 0 {
		t.Errorf("after the last epoch: producer id %d epoch %d, want a new id at epoch 0", p.pid, p.epoch)
	}
	if lso, hw := stableAndHigh(t, c, "e", 0); lso != hw {
		t.Errorf("e-0: LSO %d, high watermark %d: the fenced transaction stays open", lso, hw)
	}
	if rp := fetchStable(c, "g", "e"); rp.ErrorCode != 0 || rp.Offset != -1 {
		t.Errorf("offset of the aborted transaction: %v offset %d, want none", kerr.ErrorForCode(rp.ErrorCode), rp.Offset)
	}
}

// TestCoordinatorPartitionsFollowTheTopics (case 4): after restarts with
// other offsets.topic.num.partitions and
// transaction.state.log.num.partitions, the coordinators keep using the
// partition counts of the existing internal topics, so a committed offset
// never goes back and no epoch is handed out twice.
func TestCoordinatorPartitionsFollowTheTopics(t *testing.T) {
	// A group and transactional id whose partition under 5 comes before
	// the one under 3: replayed in partition order with 3 partitions, a
	// record written with 5 would be overwritten by an older one.
	var group, txnID string
	for i := 0; group == "" || txnID == ""; i++ {
		n := fmt.Sprintf("id%d", i)
		if coordinator.PartitionFor(n, 5) < coordinator.PartitionFor(n, 3) {
			if group == "" {
				group = n
			} else {
				txnID = n
			}
		}
	}
	dir := t.TempDir()
	var epochs []int16
	for i, n := range []int64{3, 5, 3} {
		b := NewTest(t, WithConfig(func(c *Config) {
			c.InMemory, c.DataDir = false, dir
			c.OffsetsTopicNumPartitions, c.TxnStateNumPartitions = n, n
		}))
		c := dial(t, b)
		if i == 0 {
			createTestTopic(t, b, "in", 1)
		}
		if rp := fetchStable(c, group, "in"); i > 0 && rp.Offset != int64(100*i) {
			t.Fatalf("after restart %d with %d partitions: committed offset %d (%v), want %d", i, n, rp.Offset, kerr.ErrorForCode(rp.ErrorCode), 100*i)
		}
		simpleCommit(t, c, group, "in", int64(100*(i+1)))
		p := initTxn(t, c, txnID)
		epochs = append(epochs, p.epoch)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	if epochs[0] != 0 || epochs[1] != 1 || epochs[2] != 2 {
		t.Fatalf("epochs across restarts %v, want [0 1 2]", epochs)
	}
}

// TestTxnOffsetsDoNotOverwriteANewerCommit (case 5): a transaction's offset
// written before a plain commit does not replace it when the transaction
// commits (Kafka: the record appended later wins, as compaction keeps it),
// before and after a restart.
func TestTxnOffsetsDoNotOverwriteANewerCommit(t *testing.T) {
	dir := t.TempDir()
	durable := WithConfig(func(c *Config) {
		c.InMemory, c.DataDir = false, dir
		c.OffsetsTopicNumPartitions, c.TxnStateNumPartitions = 2, 2 // fast to open and close
	})
	b := NewTest(t, durable)
	c := dial(t, b)
	createTestTopic(t, b, "in", 1)
	p := initTxn(t, c, "tx")
	p.addOffsets(t, "g")
	if code := p.commitOffset(t, "g", "", -1, "in", 10); code != 0 {
		t.Fatalf("TxnOffsetCommit: %v", kerr.ErrorForCode(code))
	}
	simpleCommit(t, c, "g", "in", 20)
	if code := p.endTxn(t, true); code != 0 {
		t.Fatalf("EndTxn: %v", kerr.ErrorForCode(code))
	}
	if rp := fetchStable(c, "g", "in"); rp.Offset != 20 {
		t.Fatalf("after the commit: offset %d (%v), want 20", rp.Offset, kerr.ErrorForCode(rp.ErrorCode))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b = NewTest(t, durable)
	if rp := fetchStable(dial(t, b), "g", "in"); rp.ErrorCode != 0 || rp.Offset != 20 {
		t.Fatalf("after a restart: offset %d (%v), want 20", rp.Offset, kerr.ErrorForCode(rp.ErrorCode))
	}
}

// joinGroup sends a v5 JoinGroup (again with the member id a new dynamic
// member is given, KIP-394) and returns the response once the join phase
// ends.
func joinGroup(c *rawConn, group, member string, instance *string, rebalance time.Duration) *kmsg.JoinGroupResponse {
	resp := c.roundTrip(joinRequest(group, member, instance, rebalance)).(*kmsg.JoinGroupResponse)
	if resp.ErrorCode == kerr.MemberIDRequired.Code {
		resp = c.roundTrip(joinRequest(group, resp.MemberID, instance, rebalance)).(*kmsg.JoinGroupResponse)
	}
	return resp
}

func joinRequest(group, member string, instance *string, rebalance time.Duration) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.SetVersion(5)
	req.Group, req.MemberID, req.InstanceID, req.ProtocolType = group, member, instance, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30_000, int32(rebalance.Milliseconds())
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1}}}
	return req
}

func syncGroup(c *rawConn, group, member string, instance *string, generation int32) int16 {
	req := kmsg.NewPtrSyncGroupRequest()
	req.SetVersion(5)
	req.Group, req.MemberID, req.InstanceID, req.Generation = group, member, instance, generation
	req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	req.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: member, MemberAssignment: []byte{1}}}
	return c.roundTrip(req).(*kmsg.SyncGroupResponse).ErrorCode
}

// TestStaticMemberSurvivesTheRebalanceTimeout (case 6, KIP-345): a static
// member that does not rejoin within the rebalance timeout stays in the
// group; only dynamic members are removed there.
func TestStaticMemberSurvivesTheRebalanceTimeout(t *testing.T) {
	b := NewTest(t)
	ca, cb := dial(t, b), dial(t, b)
	instance := kmsg.StringPtr("static-a")
	var a *kmsg.JoinGroupResponse
	for i := 0; i < 500; i++ {
		if a = joinGroup(ca, "g", "", instance, time.Second); a.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a.ErrorCode != 0 {
		t.Fatalf("static join: %v", kerr.ErrorForCode(a.ErrorCode))
	}
	if code := syncGroup(ca, "g", a.MemberID, instance, a.Generation); code != 0 {
		t.Fatalf("SyncGroup: %v", kerr.ErrorForCode(code))
	}
	// A dynamic member joins; the static one does not rejoin in time.
	bj := joinGroup(cb, "g", "", nil, time.Second)
	if bj.ErrorCode != 0 {
		t.Fatalf("dynamic join: %v", kerr.ErrorForCode(bj.ErrorCode))
	}
	if bj.LeaderID != bj.MemberID || len(bj.Members) != 2 {
		t.Errorf("join answer: leader %q (joined %q), %d members, want the joined member leading both", bj.LeaderID, bj.MemberID, len(bj.Members))
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.SetVersion(4)
	hb.Group, hb.MemberID, hb.InstanceID, hb.Generation = "g", a.MemberID, instance, a.Generation
	if code := ca.roundTrip(hb).(*kmsg.HeartbeatResponse).ErrorCode; code == kerr.UnknownMemberID.Code {
		t.Fatal("the static member was removed at the rebalance timeout")
	}
	again := joinGroup(ca, "g", a.MemberID, instance, time.Second)
	if again.ErrorCode != 0 || again.MemberID != a.MemberID {
		t.Fatalf("static rejoin: %v member %q", kerr.ErrorForCode(again.ErrorCode), again.MemberID)
	}
}

// TestTxnOffsetCommitDuringCompletingRebalance (case 7): a transactional
// commit of a member with the current generation is accepted while the
// group waits for SyncGroup (Kafka checks only member and generation; Java's
// producer takes REBALANCE_IN_PROGRESS there as fatal).
func TestTxnOffsetCommitDuringCompletingRebalance(t *testing.T) {
	b := NewTest(t)
	c := dial(t, b)
	createTestTopic(t, b, "in", 1)
	p := initTxn(t, c, "tx")
	j := joinGroup(c, "g", "", nil, 10*time.Second)
	if j.ErrorCode != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(j.ErrorCode))
	}
	p.addOffsets(t, "g")
	if code := p.commitOffset(t, "g", j.MemberID, j.Generation, "in", 3); code != 0 {
		t.Fatalf("TxnOffsetCommit in CompletingRebalance: %v", kerr.ErrorForCode(code))
	}
	if code := p.commitOffset(t, "g", j.MemberID, j.Generation+1, "in", 3); code != kerr.IllegalGeneration.Code {
		t.Fatalf("TxnOffsetCommit of another generation: %v", kerr.ErrorForCode(code))
	}
	if code := p.endTxn(t, true); code != 0 {
		t.Fatalf("EndTxn: %v", kerr.ErrorForCode(code))
	}
}

// TestStaticJoinWithUnknownInstance (low): a JoinGroup naming a known member
// id with a group.instance.id the group does not know is refused with
// UNKNOWN_MEMBER_ID (Kafka's validateExistingMember).
func TestStaticJoinWithUnknownInstance(t *testing.T) {
	b := NewTest(t)
	c := dial(t, b)
	var j *kmsg.JoinGroupResponse
	for i := 0; i < 500; i++ {
		if j = joinGroup(c, "g", "", nil, 10*time.Second); j.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if j.ErrorCode != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(j.ErrorCode))
	}
	again := joinGroup(c, "g", j.MemberID, kmsg.StringPtr("never-joined"), 10*time.Second)
	if again.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("join of a known member under an unknown instance id: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(again.ErrorCode))
	}
}

// TestStaticLeaderRejoinSkipsAssignment (low, KIP-814): a static leader
// rejoining a Stable group with JoinGroup v9 learns it leads, with the
// members, and SkipAssignment set; before v9 it is told the old leader id.
func TestStaticLeaderRejoinSkipsAssignment(t *testing.T) {
	b := NewTest(t)
	c := dial(t, b)
	instance := kmsg.StringPtr("static")
	join := func(v int16) *kmsg.JoinGroupResponse {
		req := joinRequest("g", "", instance, 10*time.Second)
		req.SetVersion(v)
		var resp *kmsg.JoinGroupResponse
		for i := 0; i < 500; i++ {
			if resp = c.roundTrip(req).(*kmsg.JoinGroupResponse); resp.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d static join: %v", v, kerr.ErrorForCode(resp.ErrorCode))
		}
		return resp
	}
	first := join(9)
	if code := syncGroup(c, "g", first.MemberID, instance, first.Generation); code != 0 {
		t.Fatalf("SyncGroup: %v", kerr.ErrorForCode(code))
	}
	old := join(5)
	if old.LeaderID != first.MemberID || old.SkipAssignment || len(old.Members) != 0 {
		t.Errorf("v5 rejoin: leader %q (old %q), skip %v, %d members: want the old leader id", old.LeaderID, first.MemberID, old.SkipAssignment, len(old.Members))
	}
	now := join(9)
	if now.Generation != first.Generation || now.LeaderID != now.MemberID || !now.SkipAssignment || len(now.Members) != 1 {
		t.Errorf("v9 rejoin: generation %d (was %d), leader %q (self %q), skip %v, %d members", now.Generation, first.Generation, now.LeaderID, now.MemberID, now.SkipAssignment, len(now.Members))
	}
}

// TestInitialRebalanceDelayNotCapped (low): the join phase of an empty group
// waits the full group.initial.rebalance.delay.ms even when the members'
// rebalance timeout is shorter, as Kafka's InitialDelayedJoin does.
func TestInitialRebalanceDelayNotCapped(t *testing.T) {
	b := NewTest(t, WithConfig(func(c *Config) { c.GroupInitialRebalanceDelayMs = 1500 }))
	c := dial(t, b)
	start := time.Now()
	var j *kmsg.JoinGroupResponse
	for i := 0; i < 500; i++ {
		start = time.Now()
		if j = joinGroup(c, "g", "", nil, 200*time.Millisecond); j.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if j.ErrorCode != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(j.ErrorCode))
	}
	if waited := time.Since(start); waited < 1400*time.Millisecond {
		t.Fatalf("join answered after %v, before the 1.5 s initial delay", waited)
	}
}

// TestOffsetCommitOwnExpiry (low): OffsetCommit v2-4's retention time and
// v1's commit timestamp count as in Kafka: an offset committed with a
// retention time expires after it, one committed at an old timestamp
// expires at the next check, one with the default (-1) stays.
func TestOffsetCommitOwnExpiry(t *testing.T) {
	b := NewTest(t, WithConfig(func(c *Config) { c.OffsetsRetentionCheckMs = 20 }))
	c := dial(t, b)
	createTestTopic(t, b, "in", 3)
	commit := func(v int16, partition int32, retention, timestamp int64) {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.SetVersion(v)
		req.Group, req.Generation, req.RetentionTimeMillis = "r", -1, retention
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "in", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: partition, Offset: 7, Timestamp: timestamp, LeaderEpoch: -1}}}}
		for i := 0; ; i++ {
			code := c.roundTrip(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
			if code == 0 {
				return
			}
			if code != kerr.CoordinatorLoadInProgress.Code || i == 500 {
				t.Fatalf("v%d commit: %v", v, kerr.ErrorForCode(code))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	commit(2, 0, 300, -1)
	commit(1, 1, -1, time.Now().Add(-8*24*time.Hour).UnixMilli())
	commit(4, 2, -1, -1)
	committed := func() map[int32]int64 {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.SetVersion(5)
		req.Group = "r"
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "in", Partitions: []int32{0, 1, 2}}}
		out := map[int32]int64{}
		for _, p := range c.roundTrip(req).(*kmsg.OffsetFetchResponse).Topics[0].Partitions {
			out[p.Partition] = p.Offset
		}
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	for got := committed(); got[0] != -1 || got[1] != -1; got = committed() {
		if time.Now().After(deadline) {
			t.Fatalf("offsets %v: the v2 commit with a 300 ms retention and the v1 commit 8 days old did not expire", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := committed(); got[2] != 7 {
		t.Fatalf("the v4 commit with the default retention expired: %v", got)
	}
}
