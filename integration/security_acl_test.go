package integration

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/internal/auth"
)

// aclBroker starts a broker with the authorizer on and a SASL_PLAINTEXT
// listener where alice and admin (User:admin, a super user) log in with
// SCRAM-SHA-256 or PLAIN, password <user>-pw; admin creates topics a, b,
// c and pre-x, and alice may write and read topic a, read group g, do
// anything on c but write it, and write every topic starting with "pre-".
func aclBroker(t *testing.T) *broker.Broker {
	t.Helper()
	opts := []broker.TestOption{broker.WithAuthorizer("User:admin"), broker.WithListener(broker.ProtocolSASLPlaintext)}
	for _, user := range []string{"alice", "admin"} {
		opts = append(opts, broker.WithSCRAMUser(auth.MechanismSCRAMSHA256, user, user+"-pw"), broker.WithPlainUser(user, user+"-pw"))
	}
	b := broker.NewTest(t, opts...)
	admin := aclClient(t, b, "admin")
	ctx := context.Background()
	create := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range []string{"a", "b", "c", "pre-x", "prx"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		create.Topics = append(create.Topics, rt)
	}
	cresp, err := create.RequestWith(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range cresp.Topics {
		if rt.ErrorCode != 0 {
			t.Fatalf("admin creating %s: %v", rt.Topic, kerr.ErrorForCode(rt.ErrorCode))
		}
	}
	acl := func(rt kmsg.ACLResourceType, name string, pt kmsg.ACLResourcePatternType, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) kmsg.CreateACLsRequestCreation {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = rt, name, pt
		c.Principal, c.Host, c.Operation, c.PermissionType = "User:alice", "*", op, perm
		return c
	}
	topic, group, lit, pre := kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed
	allow, deny := kmsg.ACLPermissionTypeAllow, kmsg.ACLPermissionTypeDeny
	req := kmsg.NewPtrCreateACLsRequest()
	req.Creations = []kmsg.CreateACLsRequestCreation{
		acl(topic, "a", lit, kmsg.ACLOperationWrite, allow),
		acl(topic, "a", lit, kmsg.ACLOperationRead, allow),
		acl(group, "g", lit, kmsg.ACLOperationRead, allow),
		acl(topic, "c", lit, kmsg.ACLOperationAll, allow),
		acl(topic, "c", lit, kmsg.ACLOperationWrite, deny),
		acl(topic, "pre-", pre, kmsg.ACLOperationWrite, allow),
	}
	resp, err := req.RequestWith(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.Results {
		if r.ErrorCode != 0 {
			t.Fatalf("creating ACL %d: %v %v", i, kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
		}
	}
	return b
}

// aclClient is user's kgo client, logged in with SCRAM-SHA-256.
func aclClient(t *testing.T, b *broker.Broker, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	login := scram.Auth{User: user, Pass: user + "-pw"}.AsSha256Mechanism()
	return clientOf(t, b.ListenerAddr(broker.ProtocolSASLPlaintext), user+"-client", append([]kgo.Opt{kgo.SASL(login)}, opts...)...)
}

// clientOf is a kgo client of addr with clientID and short retries.
func clientOf(t *testing.T, addr, clientID string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID(clientID),
		kgo.RetryTimeout(2 * time.Second), kgo.RecordDeliveryTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestACLsKgo is issue 13's ACL done-when through franz-go: alice may do
// exactly what her ACLs allow, each other step fails with Kafka's
// authorization error, and the super user bypasses the ACLs.
func TestACLsKgo(t *testing.T) {
	b := aclBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := aclClient(t, b, "alice")

	produce := func(cl *kgo.Client, topic string) error {
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
	}
	if err := produce(alice, "a"); err != nil {
		t.Fatalf("alice producing to a (WRITE allowed): %v", err)
	}
	if err := produce(alice, "b"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice producing to b: want TOPIC_AUTHORIZATION_FAILED, got %v", err)
	}
	if err := produce(alice, "c"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice producing to c (ALLOW ALL, DENY WRITE): want TOPIC_AUTHORIZATION_FAILED, got %v", err)
	}
	if err := produce(alice, "pre-x"); err != nil {
		t.Errorf("alice producing to pre-x (prefixed WRITE pre-): %v", err)
	}
	if err := produce(alice, "prx"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice producing to prx (outside the prefix): want TOPIC_AUTHORIZATION_FAILED, got %v", err)
	}

	// Consume a as group g: the record produced above comes back.
	consumer := aclClient(t, b, "alice", kgo.ConsumeTopics("a"), kgo.ConsumerGroup("g"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fetches := consumer.PollRecords(ctx, 1)
	if errs := fetches.Errors(); len(errs) > 0 || fetches.NumRecords() != 1 {
		t.Fatalf("alice consuming a as group g: %d records, errors %v", fetches.NumRecords(), errs)
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Errorf("alice committing as group g: %v", err)
	}

	// Group h: FindCoordinator and JoinGroup are refused.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = "h", []string{"h"}
	if fr, err := fc.RequestWith(ctx, alice); err != nil || len(fr.Coordinators) != 1 || fr.Coordinators[0].ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Errorf("FindCoordinator for group h: %v %+v", err, fr)
	}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis = "h", "consumer", 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	// kgo routes JoinGroup through FindCoordinator, whose error it returns.
	if jr, err := join.RequestWith(ctx, alice); !errors.Is(err, kerr.GroupAuthorizationFailed) && (err != nil || jr.ErrorCode != kerr.GroupAuthorizationFailed.Code) {
		t.Errorf("JoinGroup h: %v %v", err, jr)
	}
	hConsumer := aclClient(t, b, "alice", kgo.ConsumeTopics("a"), kgo.ConsumerGroup("h"))
	hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
	var hErr error
	for hErr == nil && hctx.Err() == nil {
		hErr = hConsumer.PollFetches(hctx).Err0()
	}
	hcancel()
	if !errors.Is(hErr, kerr.GroupAuthorizationFailed) {
		t.Errorf("kgo consuming as group h: want GROUP_AUTHORIZATION_FAILED, got %v", hErr)
	}

	// Creating topics, describing configs, beginning a transaction.
	ct := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "new", 1, 1
	ct.Topics = append(ct.Topics, rt)
	if cr, err := ct.RequestWith(ctx, alice); err != nil || cr.Topics[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("alice creating a topic: %v %+v", err, cr)
	}
	dc := kmsg.NewPtrDescribeConfigsRequest()
	for _, r := range []struct {
		typ  kmsg.ConfigResourceType
		name string
	}{{kmsg.ConfigResourceTypeTopic, "a"}, {kmsg.ConfigResourceTypeBroker, "0"}} {
		res := kmsg.NewDescribeConfigsRequestResource()
		res.ResourceType, res.ResourceName = r.typ, r.name
		dc.Resources = append(dc.Resources, res)
	}
	dr, err := dc.RequestWith(ctx, alice)
	if err != nil || len(dr.Resources) != 2 {
		t.Fatalf("describing configs: %v %+v", err, dr)
	}
	for _, r := range dr.Resources {
		want := kerr.TopicAuthorizationFailed.Code
		if r.ResourceType == kmsg.ConfigResourceTypeBroker {
			want = kerr.ClusterAuthorizationFailed.Code
		}
		if r.ErrorCode != want || len(r.Configs) != 0 {
			t.Errorf("alice describing configs of %v %s: %v, %d configs", r.ResourceType, r.ResourceName, kerr.ErrorForCode(r.ErrorCode), len(r.Configs))
		}
	}
	txn := aclClient(t, b, "alice", kgo.TransactionalID("alice-txn"))
	if err := txn.BeginTransaction(); err == nil {
		err = produce(txn, "a")
		if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
			t.Errorf("alice's transaction: want TRANSACTIONAL_ID_AUTHORIZATION_FAILED, got %v", err)
		}
	} else if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Errorf("alice beginning a transaction: %v", err)
	}

	// Metadata for all topics lists only what alice may describe: a, c
	// (ALL) and nothing else (a prefixed WRITE implies DESCRIBE on pre-x).
	md := kmsg.NewPtrMetadataRequest()
	md.IncludeTopicAuthorizedOperations = true
	mr, err := md.RequestWith(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mt := range mr.Topics {
		names = append(names, *mt.Topic)
		if *mt.Topic == "a" && mt.AuthorizedOperations != 1<<kmsg.ACLOperationRead|1<<kmsg.ACLOperationWrite|1<<kmsg.ACLOperationDescribe {
			t.Errorf("topic a's authorized operations %b", mt.AuthorizedOperations)
		}
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "a,c,pre-x" {
		t.Errorf("alice's all-topics Metadata lists %v, want a,c,pre-x", names)
	}
	dcl := kmsg.NewPtrDescribeClusterRequest()
	dcl.IncludeClusterAuthorizedOperations = true
	if cr, err := dcl.RequestWith(ctx, alice); err != nil || cr.ClusterAuthorizedOperations != 0 {
		t.Errorf("alice's cluster authorized operations: %v %+v, want 0 (no DESCRIBE on the cluster)", err, cr)
	}
	md = kmsg.NewPtrMetadataRequest()
	for _, name := range []string{"b", "nonexistent"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		md.Topics = append(md.Topics, mt)
	}
	if mr, err = md.RequestWith(ctx, alice); err != nil || len(mr.Topics) != 2 {
		t.Fatalf("named Metadata: %v %+v", err, mr)
	}
	for _, mt := range mr.Topics {
		if mt.ErrorCode != kerr.TopicAuthorizationFailed.Code || len(mt.Partitions) != 0 {
			t.Errorf("alice's Metadata for %s: %v (authorization comes before existence)", *mt.Topic, kerr.ErrorForCode(mt.ErrorCode))
		}
	}

	// The super user bypasses every ACL.
	admin := aclClient(t, b, "admin")
	if err := produce(admin, "b"); err != nil {
		t.Errorf("super user producing to b: %v", err)
	}
	if cr, err := ct.RequestWith(ctx, admin); err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Errorf("super user creating a topic: %v %+v", err, cr)
	}
	mr, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, admin)
	if err != nil || len(mr.Topics) < 6 {
		t.Errorf("super user's Metadata: %v, %d topics", err, len(mr.Topics))
	}
	if cr, err := dcl.RequestWith(ctx, admin); err != nil || cr.ClusterAuthorizedOperations != 1<<kmsg.ACLOperationCreate|1<<kmsg.ACLOperationClusterAction|
		1<<kmsg.ACLOperationDescribeConfigs|1<<kmsg.ACLOperationAlterConfigs|1<<kmsg.ACLOperationIdempotentWrite|1<<kmsg.ACLOperationAlter|1<<kmsg.ACLOperationDescribe {
		t.Errorf("super user's cluster authorized operations: %v %+v", err, cr)
	}
}

// TestACLsSarama is the same done-when through sarama.
func TestACLsSarama(t *testing.T) {
	b := aclBroker(t)
	// sarama logs in with PLAIN.
	login := func(c *sarama.Config, user string) *sarama.Config {
		c.Net.SASL.Enable, c.Net.SASL.Mechanism = true, sarama.SASLTypePlaintext
		c.Net.SASL.User, c.Net.SASL.Password = user, user+"-pw"
		c.ClientID = user + "-client"
		return c
	}
	cfg := func() *sarama.Config {
		c := login(saramaConfig(), "alice")
		c.Producer.Retry.Max = 1
		c.Metadata.Retry.Max = 1
		c.Consumer.Group.Rebalance.Retry.Max = 1
		c.Consumer.Group.Rebalance.Retry.Backoff = 10 * time.Millisecond
		return c
	}
	addrs := []string{b.ListenerAddr(broker.ProtocolSASLPlaintext)}
	prod, err := sarama.NewSyncProducer(addrs, cfg())
	if err != nil {
		t.Fatalf("alice's idempotent producer (WRITE on a topic is enough): %v", err)
	}
	defer prod.Close()
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "a", Value: sarama.StringEncoder("v")}); err != nil {
		t.Fatalf("alice producing to a: %v", err)
	}
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "b", Value: sarama.StringEncoder("v")}); !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
		t.Errorf("alice producing to b: want TOPIC_AUTHORIZATION_FAILED, got %v", err)
	}

	group, err := sarama.NewConsumerGroup(addrs, "g", cfg())
	if err != nil {
		t.Fatal(err)
	}
	defer group.Close()
	got := make(chan string, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go group.Consume(ctx, []string{"a"}, oneRecordHandler{got})
	select {
	case v := <-got:
		if v != "v" {
			t.Errorf("alice consuming a as g read %q", v)
		}
	case <-ctx.Done():
		t.Fatal("alice consuming a as group g read nothing")
	}

	hGroup, err := sarama.NewConsumerGroup(addrs, "h", cfg())
	if err != nil {
		t.Fatal(err)
	}
	defer hGroup.Close()
	hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
	defer hcancel()
	if err := hGroup.Consume(hctx, []string{"a"}, oneRecordHandler{make(chan string, 1)}); !errors.Is(err, sarama.ErrGroupAuthorizationFailed) {
		t.Errorf("alice consuming as group h: want GROUP_AUTHORIZATION_FAILED, got %v", err)
	}

	admin, err := sarama.NewClusterAdmin(addrs, cfg())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic("new", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
		t.Errorf("alice creating a topic: want TOPIC_AUTHORIZATION_FAILED, got %v", err)
	}
	if _, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: "a"}); !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
		t.Errorf("alice describing a's configs: want TOPIC_AUTHORIZATION_FAILED, got %v", err)
	}
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range topics {
		names = append(names, name)
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "a,c,pre-x" {
		t.Errorf("alice's topic list %v, want a,c,pre-x", names)
	}

	txnCfg := cfg()
	txnCfg.Producer.Transaction.ID = "alice-txn"
	txnCfg.Producer.Transaction.Retry.Max = 1
	if tp, err := sarama.NewSyncProducer(addrs, txnCfg); err == nil {
		err = tp.BeginTxn()
		tp.Close()
		t.Errorf("alice's transactional producer started (begin: %v)", err)
	} else if !errors.Is(err, sarama.ErrTransactionalIDAuthorizationFailed) {
		t.Errorf("alice's transactional producer: want TRANSACTIONAL_ID_AUTHORIZATION_FAILED, got %v", err)
	}

	superCfg := login(saramaConfig(), "admin")
	sprod, err := sarama.NewSyncProducer(addrs, superCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sprod.Close()
	if _, _, err := sprod.SendMessage(&sarama.ProducerMessage{Topic: "b", Value: sarama.StringEncoder("v")}); err != nil {
		t.Errorf("super user producing to b: %v", err)
	}
}

// oneRecordHandler passes the first record's value to got.
type oneRecordHandler struct{ got chan string }

func (oneRecordHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (oneRecordHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h oneRecordHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		select {
		case h.got <- string(m.Value):
		default:
		}
		s.MarkMessage(m, "")
	}
	return nil
}
