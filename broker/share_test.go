package broker

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// shareClient sends share requests on one kgo connection, as a share
// consumer does (sessions belong to a member, not to a connection, but a
// real client keeps one).
type shareClient struct {
	t  *testing.T
	cl *kgo.Client
	b  *Broker
}

func newShareClient(t *testing.T, b *Broker) *shareClient {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &shareClient{t, cl, b}
}

func (c *shareClient) send(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := c.cl.Broker(int(c.b.nodeID)).Request(ctx, req)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}

func (c *shareClient) setGroupConfig(group, key, value string) {
	c.t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: key, Value: &value}}
	req.Resources = append(req.Resources, res)
	if code := c.send(req).(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode; code != 0 {
		c.t.Fatalf("setting %s: %v", key, kerr.ErrorForCode(code))
	}
}

func (c *shareClient) fetch(group, member string, epoch int32, id [16]byte, acks ...kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch) *kmsg.ShareFetchResponse {
	c.t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &group, &member, epoch
	req.MaxWaitMillis, req.MinBytes, req.MaxRecords, req.BatchSize = 500, 1, 100, 100
	rt := kmsg.NewShareFetchRequestTopic()
	rt.TopicID = id
	rp := kmsg.NewShareFetchRequestTopicPartition()
	rp.AcknowledgementBatches = acks
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return c.send(req).(*kmsg.ShareFetchResponse)
}

func (c *shareClient) ack(group, member string, epoch int32, id [16]byte, acks ...kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch) *kmsg.ShareAcknowledgeResponse {
	c.t.Helper()
	req := kmsg.NewPtrShareAcknowledgeRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &group, &member, epoch
	rt := kmsg.NewShareAcknowledgeRequestTopic()
	rt.TopicID = id
	rp := kmsg.NewShareAcknowledgeRequestTopicPartition()
	rp.AcknowledgementBatches = acks
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return c.send(req).(*kmsg.ShareAcknowledgeResponse)
}

// acquired lists a response's acquired runs as (first, last, delivery count).
func acquired(resp *kmsg.ShareFetchResponse) [][3]int64 {
	var out [][3]int64
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			for _, r := range p.AcquiredRecords {
				out = append(out, [3]int64{r.FirstOffset, r.LastOffset, int64(r.DeliveryCount)})
			}
		}
	}
	return out
}

// TestShareStateSurvivesRestart: acknowledgements answered before a broker
// restart hold after it (accepted and rejected records are never delivered
// again, the released one and the ones still locked come back with their
// deliveries counted), as do the share group and its configs.
func TestShareStateSurvivesRestart(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Set(DevOverrides)
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Close(context.Background()) }()
	cfg.Listen = b.Addr()
	createTestTopic(t, b, "st", 1)
	id := b.topics.get("st").id
	c := newShareClient(t, b)
	produceTo(t, c.cl, "st", 0, 10)
	c.setGroupConfig("st-g", "share.auto.offset.reset", "earliest")

	if got := acquired(c.fetch("st-g", "m1", 0, id)); !slices.Equal(got, [][3]int64{{0, 9, 1}}) {
		t.Fatalf("first fetch acquired %+v", got)
	}
	resp := c.ack("st-g", "m1", 1, id, kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{FirstOffset: 0, LastOffset: 6, AcknowledgeTypes: []int8{1, 1, 1, 1, 1, 3, 2}})
	if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("acknowledge: %+v", resp)
	}

	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, err = New(cfg); err != nil {
		t.Fatalf("restart: %v", err)
	}
	c = newShareClient(t, b)
	got := acquired(c.fetch("st-g", "m2", 0, id))
	if want := [][3]int64{{6, 9, 2}}; !slices.Equal(got, want) {
		t.Fatalf("after the restart acquired %+v, want %+v", got, want)
	}
	req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	req.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{{GroupID: "st-g"}}
	dresp := c.send(req).(*kmsg.DescribeShareGroupOffsetsResponse)
	if g := dresp.Groups[0]; g.ErrorCode != 0 || len(g.Topics) != 1 || g.Topics[0].Partitions[0].StartOffset != 6 || g.Topics[0].Partitions[0].Lag != 4 {
		t.Fatalf("offsets after the restart: %+v", dresp.Groups)
	}
	lresp := c.send(kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse)
	if !slices.ContainsFunc(lresp.Groups, func(g kmsg.ListGroupsResponseGroup) bool { return g.Group == "st-g" && g.GroupType == "share" }) {
		t.Fatalf("ListGroups after the restart: %+v", lresp.Groups)
	}
}

// TestShareSessionErrors: the share session errors Kafka answers.
func TestShareSessionErrors(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "se", 1)
	id := b.topics.get("se").id
	c := newShareClient(t, b)
	if resp := c.fetch("se-g", "m", 3, id); resp.ErrorCode != kerr.ShareSessionNotFound.Code {
		t.Errorf("fetch in a session never opened: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if resp := c.ack("se-g", "m", 0, id); resp.ErrorCode != kerr.InvalidShareSessionEpoch.Code {
		t.Errorf("acknowledge with epoch 0: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if resp := c.fetch("se-g", "m", 0, id); resp.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(resp.ErrorCode))
	}
	if resp := c.fetch("se-g", "m", 5, id); resp.ErrorCode != kerr.InvalidShareSessionEpoch.Code {
		t.Errorf("fetch with a wrong epoch: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	// Acknowledgements in the request opening a session: INVALID_REQUEST,
	// and the session stays as it was (epoch 1 goes on).
	if resp := c.fetch("se-g", "m", 0, id, kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{FirstOffset: 0, LastOffset: 0, AcknowledgeTypes: []int8{1}}); resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("acknowledging in an opening fetch: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	// Acknowledging offsets nobody acquired.
	resp := c.fetch("se-g", "m", 1, id, kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{FirstOffset: 0, LastOffset: 0, AcknowledgeTypes: []int8{1}})
	if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].AcknowledgeErrorCode != kerr.InvalidRecordState.Code {
		t.Errorf("acknowledging records not acquired: %+v", resp.Topics)
	}
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.MemberEpoch = "se-g", "m", 3
	if r := c.send(hb).(*kmsg.ShareGroupHeartbeatResponse); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("heartbeat of an unknown member: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	hb.MemberEpoch, hb.SubscribedTopicNames = 0, []string{"se"}
	r := c.send(hb).(*kmsg.ShareGroupHeartbeatResponse)
	if r.ErrorCode != 0 || r.MemberEpoch != 1 || r.Assignment == nil || len(r.Assignment.TopicPartitions) != 1 || r.HeartbeatIntervalMillis != 5000 {
		t.Fatalf("join: %+v", r)
	}
	hb.MemberEpoch, hb.SubscribedTopicNames = 9, nil
	if r := c.send(hb).(*kmsg.ShareGroupHeartbeatResponse); r.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Errorf("heartbeat with a wrong epoch: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// TestShareSessionClosedWithConnection: records acquired in a share session
// whose connection closed come back at once (with their delivery counted),
// not after the 30 s lock, as Kafka drops a session with its connection.
func TestShareSessionClosedWithConnection(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "sc", 1)
	id := b.topics.get("sc").id
	a := newShareClient(t, b)
	produceTo(t, a.cl, "sc", 0, 5)
	a.setGroupConfig("sc-g", "share.auto.offset.reset", "earliest")
	if got := acquired(a.fetch("sc-g", "gone", 0, id)); !slices.Equal(got, [][3]int64{{0, 4, 1}}) {
		t.Fatalf("acquired %v", got)
	}
	a.cl.Close()
	c := newShareClient(t, b)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got := acquired(c.fetch("sc-g", "next", 0, id)); len(got) > 0 {
			if !slices.Equal(got, [][3]int64{{0, 4, 2}}) {
				t.Fatalf("after the first consumer's connection closed: %v", got)
			}
			return
		}
	}
	t.Fatal("records of a closed connection's session still locked")
}

// TestShareFetchOfClosedConnectionAcquiresNothing: a ShareFetch whose
// connection (or broker) closed acquires no records. Its answer goes
// nowhere; records acquired for it would stay locked from the other
// members until the locks expire, or, the broker shutting down, come back
// from a restart while the client still delivers its copies. (The share
// session stays open here, as when the member's other connection opened
// it, so only the request's end can stop the acquisition.)
func TestShareFetchOfClosedConnectionAcquiresNothing(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "gone", 1)
	id := b.topics.get("gone").id
	c := newShareClient(t, b)
	c.setGroupConfig("gone-g", "share.auto.offset.reset", "earliest")
	if got := acquired(c.fetch("gone-g", "m1", 0, id)); len(got) != 0 {
		t.Fatalf("acquired %+v from an empty partition", got)
	}
	produceTo(t, c.cl, "gone", 0, 10)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = kmsg.StringPtr("gone-g"), kmsg.StringPtr("m1"), 1
	req.MaxWaitMillis, req.MinBytes, req.MaxRecords, req.BatchSize = 500, 1, 100, 100
	resp, err := b.handleShareFetch(&reqCtx{ctx: ctx, version: 2}, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.(*kmsg.ShareFetchResponse); r.ErrorCode != 0 || len(acquired(r)) != 0 {
		t.Fatalf("the closed connection's fetch: %+v", r)
	}
	if got := acquired(c.fetch("gone-g", "m2", 0, id)); !slices.Equal(got, [][3]int64{{0, 9, 1}}) {
		t.Fatalf("the next member acquired %+v", got)
	}
}

// TestShareNewSessionKeepsRecordsOfOld: a member opening a new share
// session (epoch 0, on another connection, as kgo does after a connection
// reset) keeps the records its old session acquired, as Kafka's
// SharePartitionManager.newContext only drops the old session: it
// acknowledges them in the new session, and no other member gets them.
// Released with the old session, they came back at once (to the member
// itself here, or to another one), and the member's acknowledgements of
// its own copies failed: duplicates Kafka does not cause.
func TestShareNewSessionKeepsRecordsOfOld(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "rs", 1)
	id := b.topics.get("rs").id
	a := newShareClient(t, b)
	produceTo(t, a.cl, "rs", 0, 5)
	a.setGroupConfig("rs-g", "share.auto.offset.reset", "earliest")
	if got := acquired(a.fetch("rs-g", "m", 0, id)); !slices.Equal(got, [][3]int64{{0, 4, 1}}) {
		t.Fatalf("session A acquired %v", got)
	}
	c := newShareClient(t, b)
	if resp := c.fetch("rs-g", "m", 0, id); resp.ErrorCode != 0 || len(acquired(resp)) != 0 {
		t.Fatalf("session B's opening fetch: error %v, acquired %v", kerr.ErrorForCode(resp.ErrorCode), acquired(resp))
	}
	accept := kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{FirstOffset: 0, LastOffset: 4, AcknowledgeTypes: []int8{1}}
	resp := c.ack("rs-g", "m", 1, id, accept)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("session B acknowledging session A's records: %+v", resp)
	}
	if got := acquired(c.fetch("rs-g", "other", 0, id)); len(got) != 0 {
		t.Fatalf("another member acquired %v of the accepted records", got)
	}
}

// TestShareFetchAcksOfForgottenPartition: a ShareFetch that acknowledges
// records of a partition and forgets it in the same request (kgo's request
// after the partition was revoked from the member) leaves the partition
// out of the session, as Kafka's ShareSession.update adds before it
// removes. Kept in, the broker would go on acquiring the partition's
// records for a member that drops them (it no longer fetches the
// partition), and each would stay locked until its lock expired, the same
// member taking it again each time, up to the delivery limit: kgo's
// TestShareGroupETL then never finished.
func TestShareFetchAcksOfForgottenPartition(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "fg", 2)
	id := b.topics.get("fg").id
	c := newShareClient(t, b)
	produceTo(t, c.cl, "fg", 0, 5)
	produceTo(t, c.cl, "fg", 1, 5)
	c.setGroupConfig("fg-g", "share.auto.offset.reset", "earliest")

	fetch := func(epoch int32, build func(req *kmsg.ShareFetchRequest)) *kmsg.ShareFetchResponse {
		t.Helper()
		req := kmsg.NewPtrShareFetchRequest()
		req.GroupID, req.MemberID, req.ShareSessionEpoch = kmsg.StringPtr("fg-g"), kmsg.StringPtr("m"), epoch
		req.MaxWaitMillis, req.MinBytes, req.MaxRecords, req.BatchSize = 500, 1, 100, 100
		build(req)
		resp := c.send(req).(*kmsg.ShareFetchResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("fetch at epoch %d: %v", epoch, kerr.ErrorForCode(resp.ErrorCode))
		}
		return resp
	}
	byPartition := func(resp *kmsg.ShareFetchResponse) map[int32][][3]int64 {
		out := map[int32][][3]int64{}
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				for _, r := range p.AcquiredRecords {
					out[p.Partition] = append(out[p.Partition], [3]int64{r.FirstOffset, r.LastOffset, int64(r.DeliveryCount)})
				}
			}
		}
		return out
	}

	got := byPartition(fetch(0, func(req *kmsg.ShareFetchRequest) {
		rt := kmsg.NewShareFetchRequestTopic()
		rt.TopicID = id
		rt.Partitions = []kmsg.ShareFetchRequestTopicPartition{{Partition: 0}, {Partition: 1}}
		req.Topics = append(req.Topics, rt)
	}))
	if !slices.Equal(got[0], [][3]int64{{0, 4, 1}}) || !slices.Equal(got[1], [][3]int64{{0, 4, 1}}) {
		t.Fatalf("opening fetch acquired %v", got)
	}

	// Partition 1 only for its acknowledgements, and forgotten.
	resp := fetch(1, func(req *kmsg.ShareFetchRequest) {
		rt := kmsg.NewShareFetchRequestTopic()
		rt.TopicID = id
		rp := kmsg.NewShareFetchRequestTopicPartition()
		rp.Partition = 1
		rp.AcknowledgementBatches = []kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{{FirstOffset: 0, LastOffset: 4, AcknowledgeTypes: []int8{1}}}
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		req.ForgottenTopicsData = []kmsg.ShareFetchRequestForgottenTopicsData{{TopicID: id, Partitions: []int32{1}}}
		req.MaxWaitMillis = 0
	})
	var ackCode int16 = -1
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if p.Partition == 1 {
				ackCode = p.AcknowledgeErrorCode
			}
		}
	}
	if ackCode != 0 {
		t.Fatalf("acknowledging partition 1 while forgetting it: code %d", ackCode)
	}

	produceTo(t, c.cl, "fg", 0, 5)
	produceTo(t, c.cl, "fg", 1, 5)
	got = byPartition(fetch(2, func(*kmsg.ShareFetchRequest) {}))
	if len(got[1]) > 0 {
		t.Fatalf("the session acquired %v of the forgotten partition 1", got[1])
	}
	if !slices.Equal(got[0], [][3]int64{{5, 9, 1}}) {
		t.Fatalf("partition 0, still in the session, acquired %v", got[0])
	}
}

// TestShareMetricsSayWhyRecordsCameBack: /metrics counts each record given
// back by why (a RELEASE, the session closing), archived instead at the
// delivery limit, and accepted records by their delivery count.
func TestShareMetricsSayWhyRecordsCameBack(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "sm", 1)
	id := b.topics.get("sm").id
	c := newShareClient(t, b)
	produceTo(t, c.cl, "sm", 0, 5)
	c.setGroupConfig("sm-g", "share.auto.offset.reset", "earliest")
	c.setGroupConfig("sm-g", "share.delivery.count.limit", "2")
	ackBatch := func(first, last int64, types ...int8) kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch {
		return kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{FirstOffset: first, LastOffset: last, AcknowledgeTypes: types}
	}

	if got := acquired(c.fetch("sm-g", "m1", 0, id)); !slices.Equal(got, [][3]int64{{0, 4, 1}}) {
		t.Fatalf("m1 acquired %v", got)
	}
	// Accept 0, release 1, reject 2; closing the session gives back 3 and 4.
	if resp := c.ack("sm-g", "m1", -1, id, ackBatch(0, 2, 1, 2, 3)); resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("m1's closing acknowledgement: %+v", resp)
	}
	if got := acquired(c.fetch("sm-g", "m2", 0, id)); !slices.Equal(got, [][3]int64{{1, 1, 2}, {3, 4, 2}}) {
		t.Fatalf("m2 acquired %v", got)
	}
	// Released at the second delivery, the limit: archived.
	if resp := c.ack("sm-g", "m2", 1, id, ackBatch(1, 1, 2), ackBatch(3, 4, 1)); resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("m2's acknowledgement: %+v", resp)
	}

	fams, err := b.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	value := func(name, label, value string) float64 {
		for _, f := range fams {
			if f.GetName() != name {
				continue
			}
			for _, m := range f.Metric {
				if len(m.Label) == 1 && m.Label[0].GetName() == label && m.Label[0].GetValue() == value {
					return m.Counter.GetValue()
				}
			}
		}
		return -1
	}
	for _, w := range []struct {
		name, label, value string
		want               float64
	}{
		{"kafkit_share_records_released_total", "reason", "release_ack", 1},
		{"kafkit_share_records_released_total", "reason", "session_closed", 2},
		{"kafkit_share_records_released_total", "reason", "lock_timeout", 0},
		{"kafkit_share_records_archived_total", "reason", "release_ack", 1},
		{"kafkit_share_records_archived_total", "reason", "session_closed", 0},
		{"kafkit_share_records_accepted_total", "delivery_count", "1", 1},
		{"kafkit_share_records_accepted_total", "delivery_count", "2", 2},
		{"kafkit_share_records_accepted_total", "delivery_count", "3", 0},
	} {
		if got := value(w.name, w.label, w.value); got != w.want {
			t.Errorf("%s{%s=%q} = %v, want %v", w.name, w.label, w.value, got, w.want)
		}
	}
}
