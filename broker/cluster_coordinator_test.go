package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kafkit/kafkit/internal/metadata"
)

// steadyCluster is a test cluster whose brokers are not fenced by a slow
// heartbeat on a loaded machine (sessions of 10 s): the tests using it move
// leadership themselves.
func steadyCluster(t *testing.T) *TestCluster {
	return NewTestCluster(t, 3, WithConfig(func(c *Config) { c.BrokerSessionTimeoutMs = 10000 }))
}

// moveLeader has the active controller move a partition's leadership to
// node to once to is in its ISR: a clean election, as a preferred election
// or a reassignment makes it. The ISR is the leader's to keep: a replica
// that restarted rejoins it only once it caught up (replica.lag.time.max.ms,
// AlterPartition), so electing it loses no record the old leader
// acknowledged. It returns once every running node's image has it.
func moveLeader(t *testing.T, c *TestCluster, topic string, partition, to int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, err := c.Broker(c.Controller()).cluster.decide(ctx, func(img *metadata.Image) ([]metadata.Record, error) {
			tp := img.Topics[topic]
			p := tp.Partitions[partition]
			if p.Leader == to {
				return nil, nil
			}
			if !slices.Contains(p.ISR, to) {
				return nil, errNotInSync
			}
			return []metadata.Record{&metadata.PartitionChange{TopicID: tp.ID, Partition: partition, Leader: to}}, nil
		})
		if err == nil {
			break
		}
		retriable := err == errNotInSync || errors.Is(err, kerr.NotController) || errors.Is(err, kerr.RequestTimedOut)
		if !retriable || ctx.Err() != nil {
			t.Fatalf("moving %s-%d to %d: %v", topic, partition, to, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		moved := true
		for id := int32(1); id <= int32(len(c.cfgs)); id++ {
			if b := c.Broker(id); b != nil && b.cluster.partitionLeader(topic, partition) != to {
				moved = false
			}
		}
		if moved {
			return
		}
	}
	t.Fatalf("%s-%d: not every node saw node %d lead it", topic, partition, to)
}

var errNotInSync = errors.New("not in the ISR yet")

// committedInLog is the offset of group's last plain commit of tp in node
// b's log of __consumer_offsets, -1 for none: what its coordinator must
// serve once it loaded the partition, whatever it held before.
func committedInLog(t *testing.T, b *Broker, group, topic string, partition int32) int64 {
	t.Helper()
	out := int64(-1)
	for r, err := range b.replayOffsets(b.coord.groups.PartitionFor(group)) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Marker != 0 || r.ProducerID >= 0 || len(r.Key) < 2 || binary.BigEndian.Uint16(r.Key) > 1 {
			continue
		}
		var k kmsg.OffsetCommitKey
		if k.ReadFrom(r.Key) != nil || k.Group != group || k.Topic != topic || k.Partition != partition {
			continue
		}
		if r.Value == nil {
			out = -1
			continue
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(r.Value); err != nil {
			t.Fatal(err)
		}
		out = v.Offset
	}
	return out
}

// askNode sends req to one node until its answer's code is not
// COORDINATOR_LOAD_IN_PROGRESS (bounded).
func askNode[R kmsg.Response](t *testing.T, b *Broker, req kmsg.Request, code func(R) int16) R {
	t.Helper()
	cl := nodeClient(t, b)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, err := cl.SeedBrokers()[0].Request(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if code(r.(R)) != kerr.CoordinatorLoadInProgress.Code || time.Now().After(deadline) {
			return r.(R)
		}
	}
}

// findCoordinator asks for key's coordinator until one is available.
func findCoordinator(t *testing.T, cl *kgo.Client, key string, keyType int8) int32 {
	t.Helper()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey, req.CoordinatorType = key, keyType
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := req.RequestWith(context.Background(), cl)
		if err == nil && resp.ErrorCode == 0 {
			return resp.NodeID
		}
		if time.Now().After(deadline) {
			t.Fatalf("FindCoordinator %q: %v %v", key, err, resp)
		}
	}
}

// offsetFetch asks one node for group's offset of topic's partition 0 (the
// version kgo negotiates: groups from v8).
func offsetFetch(t *testing.T, b *Broker, group, topic string) (int16, int64) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group, req.Topics = group, []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{0}}}
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group, rg.Topics = group, []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}
	req.Groups = append(req.Groups, rg)
	resp := askNode(t, b, req, func(r *kmsg.OffsetFetchResponse) int16 {
		if len(r.Groups) > 0 {
			return r.Groups[0].ErrorCode
		}
		return r.ErrorCode
	})
	if len(resp.Groups) > 0 {
		g := resp.Groups[0]
		if g.ErrorCode != 0 {
			return g.ErrorCode, -1
		}
		return 0, g.Topics[0].Partitions[0].Offset
	}
	if resp.ErrorCode != 0 {
		return resp.ErrorCode, -1
	}
	return 0, resp.Topics[0].Partitions[0].Offset
}

// A group coordinator that loses its partition answers the members
// waiting in a rebalance NOT_COORDINATOR and drops the group; the new
// leader serves the partition as its own log has it; and when the first
// node leads the partition again it serves what its log holds, not the
// rebalance it had in memory (never written: the group had no
// assignment yet).
func TestClusterCoordinatorUnloadsAndReloads(t *testing.T) {
	c := steadyCluster(t)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "work", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("work", 1)
	findCoordinator(t, cl, "grp", 0) // creates __consumer_offsets
	c.AwaitTopic(offsetsTopic, 50)
	p := coordinatorPartition(c, "grp")
	x := c.Leader(offsetsTopic, p)
	bx := c.Broker(x)

	commit := func(b *Broker, offset int64) {
		t.Helper()
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.Generation = 7, "grp", -1
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "work", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
		resp := askNode(t, b, req, func(r *kmsg.OffsetCommitResponse) int16 { return r.Topics[0].Partitions[0].ErrorCode })
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("commit %d on node %d: code %d", offset, b.nodeID, code)
		}
	}
	join := func(b *Broker, member string) *kmsg.JoinGroupResponse {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version, req.Group, req.MemberID, req.ProtocolType = 5, "grp", member, "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30000, 60000
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}}
		return askNode(t, b, req, func(r *kmsg.JoinGroupResponse) int16 { return r.ErrorCode })
	}
	newMember := func(b *Broker) string {
		r := join(b, "")
		if r.ErrorCode != kerr.MemberIDRequired.Code {
			t.Fatalf("first JoinGroup: code %d", r.ErrorCode)
		}
		return r.MemberID
	}
	groupState := func(b *Broker) (int16, string, int) {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{"grp"}
		r := askNode(t, b, req, func(r *kmsg.DescribeGroupsResponse) int16 { return r.Groups[0].ErrorCode })
		return r.Groups[0].ErrorCode, r.Groups[0].State, len(r.Groups[0].Members)
	}

	commit(bx, 5)
	// Member 1 joins (generation 1, waiting for its SyncGroup); member 2's
	// join starts a rebalance that waits for member 1 to rejoin: state
	// only in the coordinator's memory.
	m1 := newMember(bx)
	if r := join(bx, m1); r.ErrorCode != 0 || r.Generation != 1 {
		t.Fatalf("member 1 joining: code %d generation %d", r.ErrorCode, r.Generation)
	}
	m2 := newMember(bx)
	waiting := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { waiting <- join(bx, m2) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, state, _ := groupState(bx); state == "PreparingRebalance" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("member 2's join never started a rebalance")
		}
	}

	y := x%3 + 1
	by := c.Broker(y)
	moveLeader(t, c, offsetsTopic, p, y)
	select {
	case r := <-waiting:
		if r.ErrorCode != kerr.NotCoordinator.Code {
			t.Errorf("member 2's pending JoinGroup after the move: code %d, want NOT_COORDINATOR", r.ErrorCode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("member 2's pending JoinGroup was not answered after the coordinator lost its partition")
	}
	if code, _ := offsetFetch(t, bx, "grp", "work"); code != kerr.NotCoordinator.Code {
		t.Errorf("OffsetFetch on the old coordinator: code %d, want NOT_COORDINATOR", code)
	}
	// Replication gave node y's log of the partition the commit.
	if code, off := offsetFetch(t, by, "grp", "work"); code != 0 || off != committedInLog(t, by, "grp", "work", 0) {
		t.Errorf("OffsetFetch on the new coordinator: code %d offset %d, want its log's %d", code, off, committedInLog(t, by, "grp", "work", 0))
	}
	commit(by, 9)

	moveLeader(t, c, offsetsTopic, p, x)
	want := committedInLog(t, bx, "grp", "work", 0)
	if code, off := offsetFetch(t, bx, "grp", "work"); code != 0 || off != want {
		t.Errorf("OffsetFetch on the first coordinator leading again: code %d offset %d, want its log's %d", code, off, want)
	}
	if code, state, members := groupState(bx); code != 0 || state != "Empty" || members != 0 {
		t.Errorf("group on the first coordinator leading again: code %d state %s with %d members, want Empty as its log has it (the rebalance was never written); log commit %d", code, state, members, want)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "grp", m1, 1
	if r := askNode(t, bx, hb, func(r *kmsg.HeartbeatResponse) int16 { return r.ErrorCode }); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("heartbeat of a member only the old memory knew: code %d, want UNKNOWN_MEMBER_ID", r.ErrorCode)
	}
}

// The transaction coordinator answers NOT_COORDINATOR for transactional
// ids whose __transaction_state partition another node leads, for every
// transactional request; the node leading it answers.
func TestClusterTxnCoordinatorNotCoordinator(t *testing.T) {
	c := steadyCluster(t)
	cl := clusterClient(t, c)
	// A transactional producer creates __transaction_state and leaves an
	// ongoing transaction behind.
	if err := createTopic(t, cl, "txn", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("txn", 1)
	pcl := clusterClient(t, c, kgo.TransactionalID("tx-nc"), kgo.DefaultProduceTopic("txn"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pcl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := pcl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic(txnStateTopic, 50)
	var tp int32
	for _, b := range c.nodes {
		tp = b.coord.txns.TxnPartitionFor("tx-nc")
	}
	owner := c.Leader(txnStateTopic, tp)
	for id := int32(1); id <= 3; id++ {
		b := c.Broker(id)
		want := kerr.NotCoordinator.Code
		if id == owner {
			want = 0
		}
		dt := kmsg.NewPtrDescribeTransactionsRequest()
		dt.TransactionalIDs = []string{"tx-nc"}
		r := askNode(t, b, dt, func(r *kmsg.DescribeTransactionsResponse) int16 { return r.TransactionStates[0].ErrorCode })
		if got := r.TransactionStates[0].ErrorCode; got != want {
			t.Errorf("DescribeTransactions of tx-nc on node %d (owner %d): code %d, want %d", id, owner, got, want)
		}
		if id == owner {
			if r.TransactionStates[0].State != "Ongoing" {
				t.Errorf("owner describes tx-nc as %q", r.TransactionStates[0].State)
			}
			continue
		}
		// A client's AddPartitionsToTxn (v3: Kafka 3.4's, before the
		// broker-only v4).
		v3, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.MaxVersions(kversion.V3_4_0()))
		if err != nil {
			t.Fatal(err)
		}
		add := kmsg.NewPtrAddPartitionsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch = "tx-nc", 1, 0
		add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "txn", Partitions: []int32{0}}}
		r3, err := v3.SeedBrokers()[0].Request(ctx, add)
		v3.Close()
		if err != nil {
			t.Fatal(err)
		}
		if ar := r3.(*kmsg.AddPartitionsToTxnResponse); ar.Topics[0].Partitions[0].ErrorCode != kerr.NotCoordinator.Code {
			t.Errorf("AddPartitionsToTxn of tx-nc on node %d: %+v, want NOT_COORDINATOR", id, ar)
		}
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.TransactionalID, ao.ProducerID, ao.Group = "tx-nc", 1, "g"
		if got := askNode(t, b, ao, func(r *kmsg.AddOffsetsToTxnResponse) int16 { return r.ErrorCode }).ErrorCode; got != kerr.NotCoordinator.Code {
			t.Errorf("AddOffsetsToTxn of tx-nc on node %d: code %d, want NOT_COORDINATOR", id, got)
		}
		et := kmsg.NewPtrEndTxnRequest()
		et.TransactionalID, et.ProducerID, et.Commit = "tx-nc", 1, true
		if got := askNode(t, b, et, func(r *kmsg.EndTxnResponse) int16 { return r.ErrorCode }).ErrorCode; got != kerr.NotCoordinator.Code {
			t.Errorf("EndTxn of tx-nc on node %d: code %d, want NOT_COORDINATOR", id, got)
		}
		ipn := kmsg.NewPtrInitProducerIDRequest()
		ipn.TransactionalID, ipn.TransactionTimeoutMillis = kmsg.StringPtr("tx-nc"), 60000
		if got := askNode(t, b, ipn, func(r *kmsg.InitProducerIDResponse) int16 { return r.ErrorCode }).ErrorCode; got != kerr.NotCoordinator.Code {
			t.Errorf("InitProducerId of tx-nc on node %d: code %d, want NOT_COORDINATOR", id, got)
		}
		lt := kmsg.NewPtrListTransactionsRequest()
		for _, s := range askNode(t, b, lt, func(r *kmsg.ListTransactionsResponse) int16 { return r.ErrorCode }).TransactionStates {
			if s.TransactionalID == "tx-nc" {
				t.Errorf("node %d lists tx-nc, whose partition node %d leads", id, owner)
			}
		}
	}
	if err := pcl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("the producer's commit through its coordinator: %v", err)
	}
}

// KIP-890 part 1 on a cluster: a partition leader verifies a transactional
// batch with the transactional id's coordinator on another node
// (AddPartitionsToTxn VerifyOnly): a partition never added, or a batch
// after the transaction's marker, gets INVALID_TXN_STATE and leaves the
// partition's LSO alone; a fenced instance gets INVALID_PRODUCER_EPOCH.
func TestClusterTransactionalProduceVerified(t *testing.T) {
	c := steadyCluster(t)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "v", 3, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("v", 3)
	x := findCoordinator(t, cl, "tx-v", 1)
	c.AwaitTopic(txnStateTopic, 50) // on the coordinator too, whose image may lag the answering node's
	var others []int32              // partitions of v led by nodes other than the coordinator
	for p := int32(0); p < 3; p++ {
		if c.Leader("v", p) != x {
			others = append(others, p)
		}
	}
	if len(others) < 2 {
		t.Fatalf("partitions of v led by nodes other than the coordinator %d: %v", x, others)
	}
	pa, pb := others[0], others[1]
	coord := initTxn(t, dial(t, c.Broker(x)), "tx-v")
	at := func(p *txnProducer, partition int32) *txnProducer {
		q := *p
		q.c = dial(t, c.Broker(c.Leader("v", partition)))
		return &q
	}
	coord.addPartitions(t, "v", pa)
	if code := at(coord, pa).produce(t, "v", pa); code != 0 {
		t.Fatalf("produce to an added partition led by another node: %v", kerr.ErrorForCode(code))
	}
	if code := at(coord, pa).produce(t, "v", pa); code != 0 {
		t.Fatalf("second batch of the transaction: %v", kerr.ErrorForCode(code))
	}
	if code := at(coord, pb).produce(t, "v", pb); code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce to a partition never added: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	if code := coord.endTxn(t, true); code != 0 {
		t.Fatalf("EndTxn: %v", kerr.ErrorForCode(code))
	}
	if code := at(coord, pa).produce(t, "v", pa); code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce after the commit marker: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	for _, p := range []int32{pa, pb} {
		if lso, hw := stableAndHigh(t, at(coord, p).c, "v", p); lso != hw {
			t.Errorf("v-%d: LSO %d, high watermark %d: a transaction stays open", p, lso, hw)
		}
	}
	zombie := *coord
	coord.reinit(t)
	coord.addPartitions(t, "v", pb)
	if code := at(&zombie, pb).produce(t, "v", pb); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("produce of a fenced instance: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}
	if code := at(coord, pb).produce(t, "v", pb); code != 0 {
		t.Fatalf("produce of the new instance: %v", kerr.ErrorForCode(code))
	}
}

// A kgo consumer group and a transactional producer keep working when the
// broker coordinating both is stopped, and again when it returns and leads
// their partitions again (elected once back in the ISR); it then serves
// the group's offsets as its own log has them. A producer fenced on the
// way (its coordinator moved under a request) starts again, as an
// application restarts one, and its next transaction shows.
func TestClusterCoordinatorsFollowLeadership(t *testing.T) {
	c := steadyCluster(t)
	cl := clusterClient(t, c)
	x := findCoordinator(t, cl, "grp", 0)
	c.AwaitTopic(offsetsTopic, 50)
	findCoordinator(t, cl, "tx-0", 1)
	c.AwaitTopic(txnStateTopic, 50)
	txnID := ""
	var b0 *Broker
	for id := int32(1); id <= 3; id++ {
		b0 = c.Broker(id)
	}
	for i := 0; txnID == "" && i < 1000; i++ {
		id := fmt.Sprintf("tx-%d", i)
		if c.Leader(txnStateTopic, b0.coord.txns.TxnPartitionFor(id)) == x {
			txnID = id
		}
	}
	if txnID == "" {
		t.Fatalf("no transactional id coordinated by node %d", x)
	}
	// The data lives on the two other nodes, so that only the
	// coordinators move.
	var rest []int32
	for id := int32(1); id <= 3; id++ {
		if id != x {
			rest = append(rest, id)
		}
	}
	for _, name := range []string{"in", "out"} {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, -1, -1
		rt.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: rest}}
		req.Topics = append(req.Topics, rt)
		// A creation the controller could not decide in time (a loaded
		// machine) is asked again; it may have been made meanwhile.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			resp, err := req.RequestWith(context.Background(), cl)
			if err == nil && (resp.Topics[0].ErrorCode == 0 || resp.Topics[0].ErrorCode == kerr.TopicAlreadyExists.Code) {
				break
			}
			if (err == nil && resp.Topics[0].ErrorCode != kerr.RequestTimedOut.Code) || time.Now().After(deadline) {
				t.Fatalf("creating %s: %v %+v", name, err, resp)
			}
		}
		c.AwaitTopic(name, 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	seeds := func() []kgo.Opt { return []kgo.Opt{kgo.SeedBrokers(c.Addrs()...), kgo.RetryTimeout(30 * time.Second)} }
	plain := clusterClient(t, c)
	// Short sessions: the group the first coordinator loads back has the
	// member of phase a, whose session must end before the group
	// rebalances without it (as in Kafka).
	group, err := kgo.NewClient(append(seeds(), kgo.ConsumerGroup("grp"), kgo.ConsumeTopics("in"), kgo.DisableAutoCommit(),
		kgo.SessionTimeout(6*time.Second), kgo.RebalanceTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { group.Close() }()
	newProducer := func() *kgo.Client {
		p, err := kgo.NewClient(append(seeds(), kgo.TransactionalID(txnID), kgo.DefaultProduceTopic("out"))...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	txn := newProducer()
	defer func() { txn.Close() }()

	// phase moves one batch of records through the group and one
	// transaction to out.
	phase := func(tag string) {
		t.Helper()
		for i := range 5 {
			if err := plain.ProduceSync(ctx, &kgo.Record{Topic: "in", Value: fmt.Appendf(nil, "%s%d", tag, i)}).FirstErr(); err != nil {
				t.Fatalf("%s: produce: %v", tag, err)
			}
		}
		got := 0
		for got < 5 && ctx.Err() == nil {
			group.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				if string(r.Value[:1]) == tag {
					got++
				}
			})
		}
		for ctx.Err() == nil {
			if err := group.CommitUncommittedOffsets(ctx); err == nil {
				break
			} else {
				t.Logf("%s: commit: %v (retrying)", tag, err)
			}
		}
		for ctx.Err() == nil {
			err := txn.BeginTransaction()
			if err == nil {
				err = txn.ProduceSync(ctx, &kgo.Record{Value: []byte(tag)}).FirstErr()
				commit := err == nil
				if endErr := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err == nil {
					err = endErr
				}
				if commit && err == nil {
					break
				}
			}
			t.Logf("%s: transaction: %v; starting the producer again", tag, err)
			txn.Close()
			txn = newProducer()
		}
		out, err := kgo.NewClient(append(seeds(), kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))...)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		for seen := false; !seen; {
			if ctx.Err() != nil {
				t.Fatalf("%s: the committed transaction never showed in out", tag)
			}
			out.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen = seen || string(r.Value) == tag })
		}
	}
	phase("a")
	c.Stop(x)
	phase("b")
	c.Restart(x)
	moveLeader(t, c, offsetsTopic, b0.coord.groups.PartitionFor("grp"), x)
	moveLeader(t, c, txnStateTopic, b0.coord.txns.TxnPartitionFor(txnID), x)
	want := committedInLog(t, c.Broker(x), "grp", "in", 0)
	if code, off := offsetFetch(t, c.Broker(x), "grp", "in"); code != 0 || off != want || off < 5 {
		t.Errorf("group offset on the returned coordinator: code %d offset %d, want its log's %d (at least the 5 records of phase a)", code, off, want)
	}
	phase("c")
}
