package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/coordinator"
	"github.com/kafkit/kafkit/internal/testutil/netproxy"
)

// internalPartitions is the partition count of __consumer_offsets and
// __transaction_state in the coordinator tests (Kafka's 50 only slows the
// start down).
const internalPartitions = 6

// Coordinators (issue 12's "done when"): three broker processes, the
// internal topics at RF 3 with min ISR 2; a kgo consumer group that
// committed offsets, a transactional producer whose commits and aborts
// interleave, a second one whose transaction is open, and a third
// transaction of the first producer held in PrepareCommit (the link from
// its coordinator to the leader of its partition is cut while the markers
// are written), all coordinated by one node, which is then killed with
// -9. Afterwards the new coordinators serve the group's acknowledged
// offsets; the transactional ids keep their producer ids and epochs; the
// prepared transaction is committed by the new coordinator; a new
// instance of the open transaction's id bumps the epoch, aborts it and
// fences the old instance; and a read_committed consumer reads every
// committed record exactly once, no aborted one, up to the high
// watermark (LSO == HW: no transaction hangs). One round by default; three
// (the killed node restarted in between) with KAFKIT_CLUSTER_LONG=1.
func TestClusterCoordinatorFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three broker processes")
	}
	rounds := 1
	if os.Getenv("KAFKIT_CLUSTER_LONG") == "1" {
		rounds = 3
	}
	began := time.Now()
	pc := startClusterWith(t, 3, clusterOptions{proxies: true, props: fmt.Sprintf(
		"min.insync.replicas=2\noffsets.topic.num.partitions=%d\ntransaction.state.log.num.partitions=%d\nreplica.fetch.backoff.ms=100\n",
		internalPartitions, internalPartitions)})
	pc.metadata(3)
	t.Logf("three nodes up in %v", time.Since(began).Round(time.Millisecond))
	start := time.Now()
	for round := range rounds {
		if round > 0 {
			pc.awaitInSync("__consumer_offsets", "__transaction_state")
		}
		x := coordinatorFailoverRound(t, pc, round)
		t.Logf("round %d took %v", round, time.Since(start).Round(time.Millisecond))
		start = time.Now()
		if round+1 < rounds {
			pc.restart(x)
			pc.metadata(3)
		}
	}
}

// coordinatorFailoverRound runs one round on topics of its own and returns
// the node it killed.
func coordinatorFailoverRound(t *testing.T, pc *processCluster, round int) int {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	in, out := fmt.Sprintf("in-%d", round), fmt.Sprintf("out-%d", round)
	for _, tp := range []struct {
		name       string
		partitions int32
	}{{in, 1}, {out, 3}} {
		if err := createTopicRetrying(t, admin, tp.name, tp.partitions, 3, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	pc.awaitInSync(in, out)

	// A group and two transactional ids coordinated by one node x.
	group := fmt.Sprintf("grp-%d", round)
	x := int(coordinatorOf(t, admin, group, 0))
	var txA, txOpen string
	for i := 0; txOpen == "" && i < 200; i++ {
		id := fmt.Sprintf("tx-%d-%d", round, i)
		if int(coordinatorOf(t, admin, id, 1)) != x {
			continue
		}
		if txA == "" {
			txA = id
		} else {
			txOpen = id
		}
	}
	if txOpen == "" {
		t.Fatalf("no two transactional ids coordinated by node %d", x)
	}
	pc.awaitInSync("__consumer_offsets", "__transaction_state")
	leaders, err := pc.leaders(out, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	prepPartition, y := int32(-1), 0
	for p, l := range leaders {
		if int(l) != x && (prepPartition < 0 || p < prepPartition) {
			prepPartition, y = p, int(l)
		}
	}
	if prepPartition < 0 {
		t.Fatalf("every partition of %s is led by the coordinators' node %d: %v", out, x, leaders)
	}
	var live []string
	for i, a := range pc.addrs {
		if i+1 != x {
			live = append(live, a)
		}
	}
	t.Logf("round %d: coordinator node %d (group %s, transactional ids %s, %s); %s-%d led by node %d", round, x, group, txA, txOpen, out, prepPartition, y)

	// The group reads 20 records and commits twice; 20 is acknowledged.
	plain, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs...), kgo.DefaultProduceTopic(in))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	produceN := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if err := plain.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "in-%d", i)}).FirstErr(); err != nil {
				t.Fatalf("producing to %s: %v", in, err)
			}
		}
	}
	produceN(0, 20)
	grp, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(in),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(500*time.Millisecond), kgo.RetryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	poll := func(n int) []*kgo.Record {
		t.Helper()
		var recs []*kgo.Record
		for len(recs) < n {
			fs := grp.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("group polled %d of %d records", len(recs), n)
			}
			recs = append(recs, fs.Records()...)
		}
		return recs
	}
	recs := poll(20)
	if err := grp.CommitRecords(ctx, recs[:10]...); err != nil {
		t.Fatalf("committing 10: %v", err)
	}
	if err := grp.CommitRecords(ctx, recs...); err != nil {
		t.Fatalf("committing 20: %v", err)
	}

	// Transactions of txA: commits and aborts interleaved.
	newTxn := func(id string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs...), kgo.TransactionalID(id), kgo.DefaultProduceTopic(out),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryTimeout(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	committed, aborted := map[string]bool{}, map[string]bool{}
	txnA := newTxn(txA)
	defer txnA.Close()
	for k := range 6 {
		commit := k%2 == 0
		if err := txnA.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for p := range int32(3) {
			v := fmt.Sprintf("a%d-%d", k, p)
			if err := txnA.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("transaction %d: %v", k, err)
			}
			if commit {
				committed[v] = true
			} else {
				aborted[v] = true
			}
		}
		if err := txnA.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("ending transaction %d (commit %v): %v", k, commit, err)
		}
	}

	// txOpen's transaction stays open.
	txnOpen := newTxn(txOpen)
	defer txnOpen.Close()
	if err := txnOpen.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(3) {
		v := fmt.Sprintf("open-%d", p)
		if err := txnOpen.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("open transaction: %v", err)
		}
		aborted[v] = true
	}
	openBefore := describeTxn(t, pc, x, txOpen)
	beforeA := describeTxn(t, pc, x, txA)
	if openBefore.State != "Ongoing" {
		t.Fatalf("%s before the kill: %+v, want Ongoing", txOpen, openBefore)
	}

	// txA's next transaction is held in PrepareCommit: the coordinator
	// cannot reach the leader of the partition to write its marker.
	if err := txnA.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txnA.ProduceSync(ctx, &kgo.Record{Partition: prepPartition, Value: []byte("prepared")}).FirstErr(); err != nil {
		t.Fatalf("prepared transaction: %v", err)
	}
	committed["prepared"] = true
	cut := pc.links[[2]int{x, y}]
	cut.Block(netproxy.Both)
	ended := make(chan error, 1)
	go func() { ended <- txnA.EndTransaction(ctx, kgo.TryCommit) }()
	awaitTxnState(t, pc, txA, kmsg.TransactionStatePrepareCommit)

	t.Logf("killing node %d", x)
	pc.kill(x)
	// The killed process's connections die with it, the held bytes too.
	cut.CloseConns()
	cut.Unblock()

	// The group's offsets, from its new coordinator.
	cl, err := kgo.NewClient(kgo.SeedBrokers(live...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	gx := awaitNewCoordinator(t, cl, group, 0, x)
	if off := groupOffset(t, pc, gx, group, in); off != 20 {
		t.Errorf("group %s's offset of %s-0 on its new coordinator %d: %d, want the acknowledged 20", group, in, gx, off)
	}

	// The transactional ids' states.
	tx := int(awaitNewCoordinator(t, cl, txA, 1, x))
	if err := <-ended; err != nil {
		// The commit may reach the client as an error; the transaction
		// was prepared, so it commits all the same (checked below).
		t.Logf("the prepared transaction's EndTxn answered %v", err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		d := describeTxn(t, pc, tx, txA)
		if d.ProducerID != beforeA.ProducerID || d.ProducerEpoch < beforeA.ProducerEpoch {
			t.Fatalf("%s on the new coordinator: %+v; before the kill %+v", txA, d, beforeA)
		}
		if d.State == "CompleteCommit" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's prepared transaction never completed on the new coordinator: %+v", txA, d)
		}
	}
	// Its partition of __transaction_state may have gone to another node
	// than txA's.
	to := int(awaitNewCoordinator(t, cl, txOpen, 1, x))
	openAfter := describeTxn(t, pc, to, txOpen)
	if openAfter.ProducerID != openBefore.ProducerID || openAfter.ProducerEpoch < openBefore.ProducerEpoch {
		t.Errorf("%s on the new coordinator: %+v; before the kill %+v", txOpen, openAfter, openBefore)
	}

	// A new instance of txOpen bumps the epoch (aborting the open
	// transaction) and commits; the old instance is fenced.
	txnOpen2 := newTxn(txOpen)
	defer txnOpen2.Close()
	if err := txnOpen2.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txnOpen2.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("open-again")}).FirstErr(); err != nil {
		t.Fatalf("new instance of %s: %v", txOpen, err)
	}
	if err := txnOpen2.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("new instance of %s committing: %v", txOpen, err)
	}
	committed["open-again"] = true
	if d := describeTxn(t, pc, to, txOpen); d.ProducerID != openBefore.ProducerID || d.ProducerEpoch <= openBefore.ProducerEpoch {
		t.Errorf("%s after a new instance: %+v, want producer %d at an epoch above %d", txOpen, d, openBefore.ProducerID, openBefore.ProducerEpoch)
	}
	if err := txnOpen.EndTransaction(ctx, kgo.TryCommit); !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Errorf("the fenced instance of %s committing: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", txOpen, err)
	}

	// The group goes on with its new coordinator.
	produceN(20, 5)
	more := poll(5)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		err := grp.CommitRecords(ctx, more...)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committing after the kill: %v", err)
		}
	}
	if off := groupOffset(t, pc, gx, group, in); off != 25 {
		t.Errorf("group %s's offset of %s-0 after a commit on the new coordinator: %d, want 25", group, in, off)
	}

	// No transaction hangs: every partition's LSO reaches its high
	// watermark; a read_committed consumer reads every committed record
	// once and no aborted one.
	var hw, lso map[string]int64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if hw, err = listOffsets(ctx, cl, 0, out); err == nil {
			lso, err = listOffsets(ctx, cl, 1, out)
		}
		if err == nil && fmt.Sprint(hw) == fmt.Sprint(lso) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: LSO %v, high watermarks %v (%v): a transaction hangs", out, lso, hw, err)
		}
	}
	seen := map[string]int{}
	for _, v := range kgoConsumeAll(t, live[0], out, kgo.ReadCommitted(), len(committed)) {
		seen[v]++
	}
	for v := range committed {
		if seen[v] != 1 {
			t.Errorf("committed record %q read %d times", v, seen[v])
		}
	}
	for v, n := range seen {
		if !committed[v] {
			t.Errorf("read_committed read %q %d times (aborted: %v)", v, n, aborted[v])
		}
	}
	return x
}

// coordinatorOf asks for key's coordinator (0 group, 1 transaction) until
// one is available.
func coordinatorOf(t *testing.T, cl *kgo.Client, key string, keyType int8) int32 {
	t.Helper()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey, req.CoordinatorType = key, keyType
	var last error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		resp, err := req.RequestWith(ctx, cl)
		cancel()
		if err == nil {
			if err = kerr.ErrorForCode(resp.ErrorCode); err == nil {
				return resp.NodeID
			}
		}
		last = err
	}
	t.Fatalf("FindCoordinator %q: %v", key, last)
	return -1
}

// awaitNewCoordinator waits until key's coordinator is a node other than
// old.
func awaitNewCoordinator(t *testing.T, cl *kgo.Client, key string, keyType int8, old int) int32 {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if n := coordinatorOf(t, cl, key, keyType); int(n) != old {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q is still coordinated by the killed node %d", key, old)
		}
	}
}

// askNode sends req to one node until its answer's code (code) is not
// one of a coordinator that is loading or moving.
func askNode[R kmsg.Response](t *testing.T, pc *processCluster, node int, req kmsg.Request, code func(R) int16) R {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs[node-1]))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := cl.SeedBrokers()[0].Request(ctx, req)
		cancel()
		if err == nil {
			c := code(r.(R))
			if c != kerr.CoordinatorLoadInProgress.Code && c != kerr.NotCoordinator.Code && c != kerr.CoordinatorNotAvailable.Code {
				return r.(R)
			}
			err = kerr.ErrorForCode(c)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s to node %d: %v", kmsg.NameForKey(req.Key()), node, err)
		}
	}
}

// describeTxn is DescribeTransactions of one id on node.
func describeTxn(t *testing.T, pc *processCluster, node int, id string) kmsg.DescribeTransactionsResponseTransactionState {
	t.Helper()
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{id}
	r := askNode(t, pc, node, req, func(r *kmsg.DescribeTransactionsResponse) int16 { return r.TransactionStates[0].ErrorCode })
	if s := r.TransactionStates[0]; s.ErrorCode != 0 {
		t.Fatalf("DescribeTransactions %s on node %d: %v", id, node, kerr.ErrorForCode(s.ErrorCode))
	}
	return r.TransactionStates[0]
}

// groupOffset is OffsetFetch of group's offset of topic's partition 0 on
// node.
func groupOffset(t *testing.T, pc *processCluster, node int32, group, topic string) int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group, rg.Topics = group, []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}
	req.Groups = append(req.Groups, rg)
	r := askNode(t, pc, int(node), req, func(r *kmsg.OffsetFetchResponse) int16 { return r.Groups[0].ErrorCode })
	g := r.Groups[0]
	if g.ErrorCode != 0 || len(g.Topics) != 1 || len(g.Topics[0].Partitions) != 1 || g.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("OffsetFetch of %s on node %d: %+v", group, node, g)
	}
	return g.Topics[0].Partitions[0].Offset
}

// awaitTxnState reads id's partition of __transaction_state (as a client
// may: Kafka serves internal topics to consumers) until its last state
// there, below the high watermark, is state.
func awaitTxnState(t *testing.T, pc *processCluster, id string, state kmsg.TransactionState) {
	t.Helper()
	p := coordinator.PartitionFor(id, internalPartitions)
	cl, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs...), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"__transaction_state": {p: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	last := kmsg.TransactionState(-1)
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			var k kmsg.TxnMetadataKey
			var v kmsg.TxnMetadataValue
			if k.ReadFrom(r.Key) == nil && k.TransactionalID == id && r.Value != nil && v.ReadFrom(r.Value) == nil {
				last = v.State
			}
		})
		if last == state {
			return
		}
	}
	t.Fatalf("%s: last state in __transaction_state-%d %v, never %v", id, p, last, state)
}

// awaitInSync waits until every partition of topics has its three
// replicas in sync, so that any of them may lead without losing a record.
func (pc *processCluster) awaitInSync(topics ...string) {
	pc.t.Helper()
	for _, topic := range topics {
		md := pc.metadata(len(pc.running), topic)
		for _, p := range md.Topics[0].Partitions {
			pc.awaitPartition("a full ISR", topic, p.Partition, 20*time.Second, func(mp kmsg.MetadataResponseTopicPartition) bool {
				return mp.Leader >= 0 && len(mp.ISR) == 3 && slices.Contains(mp.ISR, mp.Leader)
			})
		}
	}
}
