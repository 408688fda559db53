package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kafkit/kafkit/internal/auth"
)

// nodeRequest sends req to node id's PLAINTEXT listener (as
// User:ANONYMOUS) and nowhere else.
func nodeRequest(t *testing.T, c *TestCluster, id int32, req kmsg.Request) kmsg.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := nodeClient(t, c.Broker(id)).SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatalf("%s to node %d: %v", kmsg.NameForKey(req.Key()), id, err)
	}
	return resp
}

// adminRequest is nodeRequest retried, as Kafka's admin clients retry, on
// a retriable error (a controller moving, an answer that timed out: every
// change here can be made twice) until 30 s passed; code reads the first
// entry's error.
func adminRequest(t *testing.T, c *TestCluster, id int32, req kmsg.Request, code func(kmsg.Response) int16) kmsg.Response {
	t.Helper()
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		resp, err := nodeClient(t, c.Broker(id)).SeedBrokers()[0].Request(ctx, req)
		cancel()
		if err == nil {
			if err = kerr.ErrorForCode(code(resp)); err == nil || !kerr.IsRetriable(err) {
				return resp
			}
		}
		last = err
	}
	t.Fatalf("%s to node %d: %v", kmsg.NameForKey(req.Key()), id, last)
	return nil
}

// aliceClient is a SCRAM-SHA-256 client of node id's SASL_PLAINTEXT
// listener only, as alice.
func aliceClient(t *testing.T, c *TestCluster, id int32, password string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	m := scram.Auth{User: "alice", Pass: password}.AsSha256Mechanism()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Broker(id).ListenerAddr(ProtocolSASLPlaintext)), kgo.SASL(m),
		kgo.RequestRetries(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// eventuallyNil polls fn (up to 15 s) until it returns nil.
func eventuallyNil(t *testing.T, what string, fn func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = fn(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

// restartAll stops every node (no controlled shutdown: the quorum goes with
// the first two) and starts them all again on their data.
func restartAll(t *testing.T, c *TestCluster) {
	t.Helper()
	ids := []int32{1, 2, 3}
	for _, id := range ids {
		c.Kill(id)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.start(id)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each node's image must hold this run's registration unfenced, as
	// Restart waits for: the images replayed from the log show the old
	// runs' registrations unfenced at once, and until the new ones are
	// unfenced the controller places nothing (INVALID_REPLICATION_FACTOR,
	// all brokers fenced), which failed a creation right after this
	// under load.
	for _, id := range ids {
		b := c.Broker(id)
		c.await(fmt.Sprintf("registration of node %d", id), func(*Broker) bool {
			return b.cluster.epoch.Load() > 0 && !b.cluster.fencedHere()
		})
	}
	c.AwaitLive(len(ids))
}

// SCRAM credentials, ACLs and client quotas live in the metadata quorum:
// each change goes through a node that is not the active controller
// (forwarded), is answered once that node has it (a login through it works
// at once), holds on every other node, and survives a full restart.
func TestClusterSecurityMetadata(t *testing.T) {
	c := NewTestCluster(t, 3, WithListener(ProtocolSASLPlaintext), WithAuthorizer("User:ANONYMOUS"),
		WithConfig(func(c *Config) { c.FailedAuthenticationDelayMs = 0 }))
	ctl := c.Controller()
	a, b := ctl%3+1, (ctl+1)%3+1 // the two other nodes

	// A SCRAM user created through a, usable on a at once and on b.
	alter := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	up.Name, up.Mechanism, up.Iterations, up.Salt = "alice", 1, 4096, []byte("0123456789abcdef")
	up.SaltedPassword = saltedPassword(t, "alice-pw", up.Salt, 4096)
	alter.Upsertions = append(alter.Upsertions, up)
	if r := adminRequest(t, c, a, alter, scramCode).(*kmsg.AlterUserSCRAMCredentialsResponse); len(r.Results) != 1 || r.Results[0].ErrorCode != 0 {
		t.Fatalf("alter through node %d: %+v", a, r.Results)
	}
	if err := scramLogin(c.Broker(a).ListenerAddr(ProtocolSASLPlaintext), auth.MechanismSCRAMSHA256, "alice", "alice-pw"); err != nil {
		t.Fatalf("login through node %d right after its answer: %v", a, err)
	}
	eventuallyNil(t, fmt.Sprintf("alice's login through node %d", b), func() error {
		return scramLogin(c.Broker(b).ListenerAddr(ProtocolSASLPlaintext), auth.MechanismSCRAMSHA256, "alice", "alice-pw")
	})
	if err := scramLogin(c.Broker(b).ListenerAddr(ProtocolSASLPlaintext), auth.MechanismSCRAMSHA256, "alice", "wrong"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	// Validation is the controller's, with Kafka's errors, forwarded back.
	bad := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	del.Name, del.Mechanism = "ghost", 1
	bad.Deletions = append(bad.Deletions, del)
	if r := adminRequest(t, c, b, bad, scramCode).(*kmsg.AlterUserSCRAMCredentialsResponse); len(r.Results) != 1 || r.Results[0].ErrorCode != kerr.ResourceNotFound.Code {
		t.Errorf("deleting a missing credential through node %d: %+v", b, r.Results)
	}

	// Topics: "a" alice may write, "b" not; "q" lives on node a only.
	for _, name := range []string{"a", "b", "q"} {
		q := kmsg.NewPtrCreateTopicsRequest()
		qt := kmsg.NewCreateTopicsRequestTopic()
		qt.Topic, qt.NumPartitions, qt.ReplicationFactor = name, 1, 1
		if name == "q" {
			qt.NumPartitions, qt.ReplicationFactor = -1, -1
			qt.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{a}}}
		}
		q.Topics = append(q.Topics, qt)
		if r := adminRequest(t, c, ctl, q, func(r kmsg.Response) int16 { return r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode }).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 && r.Topics[0].ErrorCode != kerr.TopicAlreadyExists.Code {
			t.Fatalf("creating %s: %+v", name, r.Topics[0])
		}
		c.AwaitTopic(name, 1)
	}

	// An ACL created through b is enforced on a.
	create := kmsg.NewPtrCreateACLsRequest()
	for _, topic := range []string{"a", "q"} {
		cr := kmsg.NewCreateACLsRequestCreation()
		cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, topic, kmsg.ACLResourcePatternTypeLiteral
		cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:alice", "*", kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeAllow
		create.Creations = append(create.Creations, cr)
	}
	if r := adminRequest(t, c, b, create, func(r kmsg.Response) int16 { return r.(*kmsg.CreateACLsResponse).Results[0].ErrorCode }).(*kmsg.CreateACLsResponse); len(r.Results) != 2 || r.Results[0].ErrorCode != 0 || r.Results[1].ErrorCode != 0 {
		t.Fatalf("create ACLs through node %d: %+v", b, r.Results)
	}
	if n := describeACLCount(t, c, b); n != 2 {
		t.Errorf("node %d describes %d ACLs right after its answer, want 2", b, n)
	}
	visible := func(id int32) func() error {
		return func() error {
			req := kmsg.NewPtrMetadataRequest()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r, err := aliceClient(t, c, id, "alice-pw").SeedBrokers()[0].Request(ctx, req)
			if err != nil {
				return err
			}
			var names []string
			for _, t := range r.(*kmsg.MetadataResponse).Topics {
				names = append(names, *t.Topic)
			}
			if got := strings.Join(names, ","); got != "a,q" {
				return fmt.Errorf("alice sees topics %q, want a,q", got)
			}
			return nil
		}
	}
	eventuallyNil(t, fmt.Sprintf("ACLs on node %d", a), visible(a))
	alice := aliceClient(t, c, a, "alice-pw", kgo.DefaultProduceTopic("b"))
	if err := alice.ProduceSync(context.Background(), &kgo.Record{Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice producing to b: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	// A quota set through b throttles alice's produce on a.
	var throttled atomic.Int64
	hook := throttleHook{&throttled}
	quota := kmsg.NewPtrAlterClientQuotasRequest()
	entry := kmsg.NewAlterClientQuotasRequestEntry()
	entry.Entity = []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "user", Name: kmsg.StringPtr("alice")}}
	entry.Ops = []kmsg.AlterClientQuotasRequestEntryOp{{Key: auth.ProducerByteRate, Value: 1024}}
	quota.Entries = append(quota.Entries, entry)
	produce := func(id int32) {
		t.Helper()
		cl := aliceClient(t, c, id, "alice-pw", kgo.DefaultProduceTopic("q"), kgo.WithHooks(hook), kgo.ProducerBatchCompression(kgo.NoCompression()))
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: make([]byte, 32<<10)}).FirstErr(); err != nil {
			t.Fatalf("alice producing to q through node %d: %v", id, err)
		}
	}
	produce(a)
	if throttled.Load() != 0 {
		t.Fatalf("throttled before any quota: %d ms", throttled.Load())
	}
	if r := adminRequest(t, c, b, quota, func(r kmsg.Response) int16 { return r.(*kmsg.AlterClientQuotasResponse).Entries[0].ErrorCode }).(*kmsg.AlterClientQuotasResponse); len(r.Entries) != 1 || r.Entries[0].ErrorCode != 0 {
		t.Fatalf("quota through node %d: %+v", b, r.Entries)
	}
	eventuallyNil(t, fmt.Sprintf("the quota on node %d", a), func() error {
		if v, _, ok := c.Broker(a).quotas.q.Limit("alice", "", auth.ProducerByteRate); !ok || v != 1024 {
			return fmt.Errorf("node %d's quota: %v %v", a, v, ok)
		}
		return nil
	})
	produce(a)
	if throttled.Load() <= 0 {
		t.Errorf("alice was not throttled on node %d", a)
	}

	// All of it survives a full restart.
	restartAll(t, c)
	eventuallyNil(t, "alice's login after the restart", func() error {
		return scramLogin(c.Broker(b).ListenerAddr(ProtocolSASLPlaintext), auth.MechanismSCRAMSHA256, "alice", "alice-pw")
	})
	eventuallyNil(t, "ACLs after the restart", visible(ctl))
	for _, id := range []int32{1, 2, 3} {
		eventuallyNil(t, fmt.Sprintf("node %d's quotas after the restart", id), func() error {
			r := nodeRequest(t, c, id, kmsg.NewPtrDescribeClientQuotasRequest()).(*kmsg.DescribeClientQuotasResponse)
			if len(r.Entries) != 1 || len(r.Entries[0].Values) != 1 || r.Entries[0].Values[0].Value != 1024 {
				return fmt.Errorf("%+v", r.Entries)
			}
			return nil
		})
	}

	// Deletions go through the same way.
	delACLs := kmsg.NewPtrDeleteACLsRequest()
	f := kmsg.NewDeleteACLsRequestFilter()
	f.ResourceType, f.ResourcePatternType, f.Operation, f.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	delACLs.Filters = append(delACLs.Filters, f)
	// (A retried deletion matches nothing the second time.)
	if r := adminRequest(t, c, a, delACLs, func(r kmsg.Response) int16 { return r.(*kmsg.DeleteACLsResponse).Results[0].ErrorCode }).(*kmsg.DeleteACLsResponse); len(r.Results) != 1 {
		t.Fatalf("delete ACLs: %+v", r.Results)
	}
	eventuallyNil(t, fmt.Sprintf("node %d without ACLs", a), func() error {
		if n := describeACLCount(t, c, a); n != 0 {
			return fmt.Errorf("node %d describes %d ACLs after deleting them all", a, n)
		}
		return nil
	})
}

func describeACLCount(t *testing.T, c *TestCluster, id int32) int {
	t.Helper()
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourcePatternType, req.Operation, req.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	r := nodeRequest(t, c, id, req).(*kmsg.DescribeACLsResponse)
	if r.ErrorCode != 0 {
		t.Fatalf("describe ACLs on node %d: %v", id, kerr.ErrorForCode(r.ErrorCode))
	}
	n := 0
	for _, res := range r.Resources {
		n += len(res.ACLs)
	}
	return n
}

// throttleHook adds up the throttle times brokers report.
type throttleHook struct{ ms *atomic.Int64 }

func (h throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	h.ms.Add(d.Milliseconds())
}

// A cluster started with a SCRAM user (WithSCRAMUser, as
// kafka-storage.sh format --add-scram): the first controller writes it
// into the metadata log once, every node logs it in, and it stays one
// credential across a full restart.
func TestClusterBootstrapSCRAM(t *testing.T) {
	c := NewTestCluster(t, 3, WithListener(ProtocolSASLPlaintext), WithSCRAMUser(auth.MechanismSCRAMSHA512, "boot", "boot-pw"),
		WithConfig(func(c *Config) { c.FailedAuthenticationDelayMs = 0 }))
	check := func() {
		t.Helper()
		for _, id := range []int32{1, 2, 3} {
			eventuallyNil(t, fmt.Sprintf("boot's login through node %d", id), func() error {
				return scramLogin(c.Broker(id).ListenerAddr(ProtocolSASLPlaintext), auth.MechanismSCRAMSHA512, "boot", "boot-pw")
			})
		}
		r := nodeRequest(t, c, c.Controller(), kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()).(*kmsg.DescribeUserSCRAMCredentialsResponse)
		if len(r.Results) != 1 || r.Results[0].User != "boot" || len(r.Results[0].CredentialInfos) != 1 {
			t.Errorf("credentials: %+v", r.Results)
		}
	}
	check()
	// Deleted, it stays deleted: the bootstrap is the log's first batch only.
	del := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	d.Name, d.Mechanism = "boot", 2
	del.Deletions = append(del.Deletions, d)
	if r := adminRequest(t, c, 1, del, scramCode).(*kmsg.AlterUserSCRAMCredentialsResponse); len(r.Results) != 1 || r.Results[0].ErrorCode != 0 && r.Results[0].ErrorCode != kerr.ResourceNotFound.Code {
		t.Fatalf("deleting boot: %+v", r.Results)
	}
	restartAll(t, c)
	// A topic created after the restart is applied after everything the
	// nodes replay and anything the new controller appends first.
	if err := createTopic(t, clusterClient(t, c), "after", 1, 1); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("after", 1)
	for _, id := range []int32{1, 2, 3} {
		if r := nodeRequest(t, c, id, kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()).(*kmsg.DescribeUserSCRAMCredentialsResponse); len(r.Results) != 0 {
			t.Errorf("node %d's credentials after the restart: %+v", id, r.Results)
		}
	}
	if err := scramLogin(c.Broker(2).ListenerAddr(ProtocolSASLPlaintext), auth.MechanismSCRAMSHA512, "boot", "boot-pw"); err == nil {
		t.Error("the deleted bootstrap user logs in after the restart")
	}
}

func scramCode(r kmsg.Response) int16 {
	return r.(*kmsg.AlterUserSCRAMCredentialsResponse).Results[0].ErrorCode
}
