package broker

import (
	"cmp"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A transaction coordinator ending a transaction does not hold up its
// other transactions while the markers travel (Kafka's coordinator writes
// them from its marker channel manager). While node b's coordinator waits
// for a marker of transaction "held" on a partition it leads: a
// verification of held's transaction from node a gets
// CONCURRENT_TRANSACTIONS at once; another transaction coordinated by b
// begins, produces and commits; and node a's coordinator gets its own
// marker written on node b. (When the coordinator kept its lock while
// markers travelled, verifications waited for it, and with markers and
// verifications on one connection two coordinators ending transactions
// with markers for each other's partitions deadlocked until the request
// timed out: kgo's TestTxnEtl never finished on three nodes. Markers and
// verifications still have connections of their own.)
func TestClusterMarkersNotBehindVerifications(t *testing.T) {
	c := steadyCluster(t)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "m", 3, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("m", 3)
	findCoordinator(t, cl, "tx-m", 1)
	c.AwaitTopic(txnStateTopic, 50)
	pa, pb := int32(0), int32(1)
	a, b := c.Leader("m", pa), c.Leader("m", pb)
	if a == b {
		t.Fatalf("m-0 and m-1 both led by node %d, want two nodes", a)
	}
	// ids coordinated by b (held up, and another that must not wait) and
	// by a (whose commit must not wait).
	var held, other, free string
	for i := 0; (held == "" || other == "" || free == "") && i < 1000; i++ {
		id := fmt.Sprintf("tx-m-%d", i)
		switch c.Leader(txnStateTopic, c.Broker(a).coord.txns.TxnPartitionFor(id)) {
		case b:
			if held == "" {
				held = id
			} else {
				other = cmp.Or(other, id)
			}
		case a:
			free = cmp.Or(free, id)
		}
	}
	if held == "" || other == "" || free == "" {
		t.Fatalf("no transactional ids coordinated by nodes %d and %d", b, a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	producer := func(id string) *kgo.Client {
		p := clusterClient(t, c, kgo.TransactionalID(id), kgo.DefaultProduceTopic("m"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Partition: pb, Value: []byte(id)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hp, fp := producer(held), producer(free)
	heldPID, heldEpoch, err := hp.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Node b's first marker write (held's commit marker on m-1, which b
	// leads) waits until release.
	entered, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	hook := func(topic string, partition int32) {
		if topic == "m" && partition == pb && first.CompareAndSwap(false, true) {
			close(entered)
			<-release
		}
	}
	c.Broker(b).cluster.beforeMarker.Store(&hook)
	var released atomic.Bool
	unblock := func() {
		if released.CompareAndSwap(false, true) {
			close(release)
		}
	}
	t.Cleanup(unblock)
	heldDone := make(chan error, 1)
	go func() { heldDone <- hp.EndTransaction(ctx, kgo.TryCommit) }()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("node b never wrote held's marker")
	}

	// Node a verifies a batch of held's transaction with b, as its
	// Produce handler does.
	start := time.Now()
	if e := c.Broker(a).cluster.verifyWithCoordinator(held, heldPID, heldEpoch, "m", pa); e != kerr.ConcurrentTransactions {
		t.Fatalf("verification of the transaction whose markers are under way: %v, want CONCURRENT_TRANSACTIONS", e)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the verification waited %v for the held marker", took)
	}

	op := producer(other)
	octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
	defer ocancel()
	if err := op.EndTransaction(octx, kgo.TryCommit); err != nil {
		t.Fatalf("commit of another transaction coordinated by node %d while its coordinator waits for a marker: %v after %v", b, err, time.Since(start))
	}

	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
	defer fcancel()
	if err := fp.EndTransaction(fctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit coordinated by node %d with a marker for node %d, while node %d's coordinator is held: %v after %v", a, b, b, err, time.Since(start))
	}
	select {
	case err := <-heldDone:
		t.Fatalf("the held commit answered (%v) before its marker was written", err)
	default:
	}
	unblock()
	if err := <-heldDone; err != nil {
		t.Fatalf("commit of the held transaction once released: %v", err)
	}
}

// The markers of a transaction are written together: the coordinator
// sends them at once and a leader appends those of its partitions before
// waiting for their high watermarks, so ending a transaction over many
// partitions costs about one high watermark wait, not one per partition
// (with 31 partitions, kgo's EndTxn outlived its request timeout on three
// loaded nodes). With replication paused from the first marker on, every
// marker of the transaction is still appended.
func TestClusterTxnMarkersTogether(t *testing.T) {
	c, paused := replicationCluster(t, 3, map[string]string{"broker.session.timeout.ms": "10000"})
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "w", 9, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("w", 9)
	findCoordinator(t, cl, "tx-w", 1)
	c.AwaitTopic(txnStateTopic, 50)
	led := map[int32][]int32{}
	for p := int32(0); p < 9; p++ {
		l := c.Leader("w", p)
		led[l] = append(led[l], p)
	}
	var b int32
	for id, ps := range led {
		if len(ps) > len(led[b]) {
			b = id
		}
	}
	if len(led[b]) < 2 {
		t.Fatalf("partitions of w by leader: %v, want one leading two or more", led)
	}
	var txnID string
	for i := 0; txnID == "" && i < 1000; i++ {
		id := fmt.Sprintf("tx-w-%d", i)
		if c.Leader(txnStateTopic, c.Broker(b).coord.txns.TxnPartitionFor(id)) != b {
			txnID = id
		}
	}
	if txnID == "" {
		t.Fatalf("no transactional id coordinated by a node other than %d", b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := clusterClient(t, c, kgo.TransactionalID(txnID), kgo.DefaultProduceTopic("w"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, part := range led[b] {
		if err := p.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	resume := func() {
		for _, f := range paused {
			f.Store(false)
		}
	}
	t.Cleanup(resume)
	hook := func(topic string, _ int32) {
		if topic == "w" {
			for _, f := range paused {
				f.Store(true)
			}
		}
	}
	c.Broker(b).cluster.beforeMarker.Store(&hook)
	done := make(chan error, 1)
	go func() { done <- p.EndTransaction(ctx, kgo.TryCommit) }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var ends []int64
		all := true
		for _, part := range led[b] {
			end := c.Broker(b).topics.partition("w", part).log.EndOffset()
			ends = append(ends, end)
			all = all && end == 2 // the record and the marker
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log ends of w's partitions %v on node %d: %v, want every marker appended while the first waits for its high watermark", led[b], b, ends)
		}
	}
	resume()
	if err := <-done; err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// Markers carry the coordinator epoch: the leader epoch of the
// transactional id's __transaction_state partition when its coordinator
// loaded it. After that partition moved to another node, a commit's
// marker shows the new coordinator's epoch (DescribeProducers), and the
// partition leader refuses a WriteTxnMarkers of an older coordinator epoch
// with TRANSACTION_COORDINATOR_FENCED, appending nothing, as Kafka's does
// for a coordinator that was replaced.
func TestClusterTxnMarkersCoordinatorEpoch(t *testing.T) {
	c := steadyCluster(t)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "ce", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("ce", 1)
	const id = "tx-ce"
	findCoordinator(t, cl, id, 1)
	c.AwaitTopic(txnStateTopic, 50)
	tp := c.Broker(1).coord.txns.TxnPartitionFor(id)
	to := c.Leader(txnStateTopic, tp)%3 + 1
	moveLeader(t, c, txnStateTopic, tp, to)
	epoch := partitionState(c, txnStateTopic, tp).LeaderEpoch
	if epoch < 1 {
		t.Fatalf("leader epoch %d of %s-%d after a move", epoch, txnStateTopic, tp)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := clusterClient(t, c, kgo.TransactionalID(id), kgo.DefaultProduceTopic("ce"))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	pid, pepoch, err := p.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := c.Broker(c.Leader("ce", 0))
	pp := dialPipe(t, leader)
	dp := kmsg.NewPtrDescribeProducersRequest()
	dt := kmsg.NewDescribeProducersRequestTopic()
	dt.Topic, dt.Partitions = "ce", []int32{0}
	dp.Topics = append(dp.Topics, dt)
	dpp := pp.roundTrip(dp).(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0]
	if dpp.ErrorCode != 0 || len(dpp.ActiveProducers) != 1 || dpp.ActiveProducers[0].ProducerID != pid {
		t.Fatalf("DescribeProducers: %v %+v", kerr.ErrorForCode(dpp.ErrorCode), dpp.ActiveProducers)
	}
	if got := dpp.ActiveProducers[0].CoordinatorEpoch; got != epoch {
		t.Fatalf("coordinator epoch of the commit marker %d, want %d (the leader epoch of %s-%d)", got, epoch, txnStateTopic, tp)
	}

	marker := func(coordinatorEpoch int32) int16 {
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.ProducerEpoch, m.CoordinatorEpoch = pid, pepoch, coordinatorEpoch
		m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: "ce", Partitions: []int32{0}}}
		req.Markers = append(req.Markers, m)
		return pp.roundTrip(req).(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode
	}
	log := leader.topics.partition("ce", 0).log
	end := log.EndOffset()
	if code := marker(epoch - 1); code != kerr.TransactionCoordinatorFenced.Code {
		t.Fatalf("marker of coordinator epoch %d after %d: %v, want TRANSACTION_COORDINATOR_FENCED", epoch-1, epoch, kerr.ErrorForCode(code))
	}
	if log.EndOffset() != end {
		t.Fatal("the fenced marker was appended")
	}
	if code := marker(epoch); code != 0 {
		t.Fatalf("marker of the current coordinator epoch: %v", kerr.ErrorForCode(code))
	}
}
