package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
	"github.com/kafkit/kafkit/internal/recordbatch"
	"github.com/kafkit/kafkit/internal/storage"
)

// replicationCluster is a test cluster whose replica fetchers back off
// briefly, with keys set on every node, and a switch per node that
// pauses its replica fetchers (a follower falling behind while it stays
// registered and unfenced).
func replicationCluster(t *testing.T, n int, keys map[string]string) (*TestCluster, map[int32]*replicationPause) {
	t.Helper()
	paused := map[int32]*replicationPause{}
	c := NewTestCluster(t, n, WithConfig(func(cfg *Config) {
		if err := cfg.Set(map[string]string{"replica.fetch.backoff.ms": "50", "replica.fetch.wait.max.ms": "200"}); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Set(keys); err != nil {
			t.Fatal(err)
		}
		f := &replicationPause{}
		paused[int32(cfg.BrokerID)] = f
		cfg.replicationPaused = f
	}))
	return c, paused
}

// partitionState is a partition's state in the active controller's image.
func partitionState(c *TestCluster, topic string, partition int32) metadata.PartitionState {
	var st metadata.PartitionState
	c.controllerView(func(img *metadata.Image) {
		if t := img.Topics[topic]; t != nil && int(partition) < len(t.Partitions) {
			st = t.Partitions[partition]
			st.ISR = slices.Clone(st.ISR)
		}
	})
	return st
}

// eventually polls cond for up to 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyNil(t, "no "+what, func() error {
		if cond() {
			return nil
		}
		return errors.New("not yet")
	})
}

// logBytes is a node's whole local log of a partition.
func logBytes(t *testing.T, b *Broker, topic string, partition int32) []byte {
	t.Helper()
	p := b.topics.partition(topic, partition)
	if p == nil {
		t.Fatalf("node %d has no %s-%d", b.nodeID, topic, partition)
	}
	out, err := p.log.ReadReplica(p.log.StartOffset(), math.MaxInt32, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Read stops at a segment's end; a test log has one segment.
	return out
}

// oneRecordProduce is a Produce v9 of one record with acks.
func oneRecordProduce(t *testing.T, topic string, partition int32, acks int16, timeout time.Duration, value string) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks, req.TimeoutMillis = acks, int32(timeout/time.Millisecond)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	bl := recordbatch.NewBuilder(recordbatch.Options{}, 0)
	bl.Append(time.Now().UnixMilli(), nil, []byte(value), nil)
	var err error
	if rp.Records, err = bl.Finish(recordbatch.NoProducer()); err != nil {
		t.Fatal(err)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// pipe is a raw connection that can have several requests in flight.
type pipe struct {
	t    *testing.T
	nc   net.Conn
	f    *kmsg.RequestFormatter
	corr int32
}

func dialPipe(t *testing.T, b *Broker) *pipe {
	nc, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &pipe{t: t, nc: nc, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("pipe"))}
}

func (p *pipe) send(req kmsg.Request) int32 {
	p.corr++
	if _, err := p.nc.Write(p.f.AppendRequest(nil, req, p.corr)); err != nil {
		p.t.Fatal(err)
	}
	return p.corr
}

// recv reads the next response, which must answer corr.
func (p *pipe) recv(req kmsg.Request, corr int32) kmsg.Response {
	var size [4]byte
	if _, err := io.ReadFull(p.nc, size[:]); err != nil {
		p.t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(p.nc, body); err != nil {
		p.t.Fatal(err)
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		p.t.Fatalf("response to request %d, want %d: out of order", got, corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	body = body[4:]
	if resp.IsFlexible() {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		p.t.Fatal(err)
	}
	return resp
}

func (p *pipe) roundTrip(req kmsg.Request) kmsg.Response { return p.recv(req, p.send(req)) }

func produceCode(resp kmsg.Response) (int16, int64) {
	sp := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	return sp.ErrorCode, sp.BaseOffset
}

// latest is ListOffsets latest (the high watermark) from the leader.
func latest(t *testing.T, p *pipe, topic string, partition int32) int64 {
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(4)
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	sp := p.roundTrip(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
	if sp.ErrorCode != 0 {
		t.Fatalf("ListOffsets: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
	return sp.Offset
}

// Followers copy the leader's batches byte for byte: after kgo produced
// with acks=all, every replica's log is the leader's, every node's high
// watermark is the end, and a consumer reads every record back.
func TestClusterReplicationByteIdentical(t *testing.T) {
	c, _ := replicationCluster(t, 3, nil)
	cl := clusterClient(t, c, kgo.DefaultProduceTopic("rep"), kgo.ConsumeTopics("rep"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err := createTopic(t, cl, "rep", 2, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("rep", 2)
	const n = 300
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Value: bytes.Repeat([]byte{byte(i)}, i%97)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("record %d: %v", i, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for part := range int32(2) {
		leader := c.Broker(c.Leader("rep", part))
		want := logBytes(t, leader, "rep", part)
		end := leader.topics.partition("rep", part).log.EndOffset()
		if end == 0 {
			t.Fatalf("partition %d is empty", part)
		}
		for id := int32(1); id <= 3; id++ {
			b := c.Broker(id)
			p := b.topics.partition("rep", part)
			eventually(t, fmt.Sprintf("node %d's copy of partition %d", id, part), func() bool {
				return p.log.EndOffset() == end && p.log.HighWatermark() == end
			})
			if got := logBytes(t, b, "rep", part); !bytes.Equal(got, want) {
				t.Fatalf("node %d's log of partition %d differs from the leader's (%d vs %d bytes)", id, part, len(got), len(want))
			}
		}
	}
	got := 0
	for got < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) { t.Errorf("fetch: %v", err) })
		got += fs.NumRecords()
	}
	if got != n {
		t.Fatalf("consumed %d records, want %d", got, n)
	}
}

// An acks=all Produce waits for the ISR (the connection serving the next
// requests meanwhile, their answers in order), times out with
// REQUEST_TIMED_OUT when the followers do not fetch, and consumers never
// see past the high watermark.
func TestClusterAcksAllWaitsForFollowers(t *testing.T) {
	c, paused := replicationCluster(t, 3, nil)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "acks", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("acks", 1)
	leaderID := c.Leader("acks", 0)
	leader := c.Broker(leaderID)
	p := dialPipe(t, leader)
	eventually(t, "leadership on the leader", func() bool { return leader.topics.partition("acks", 0).leads() })
	if code, _ := produceCode(p.roundTrip(oneRecordProduce(t, "acks", 0, -1, 5*time.Second, "a"))); code != 0 {
		t.Fatalf("acks=all with every follower: %v", kerr.ErrorForCode(code))
	}
	for id, f := range paused {
		if id != leaderID {
			f.Store(true)
		}
	}
	log := leader.topics.partition("acks", 0).log
	hw := latest(t, p, "acks", 0)
	if hw != 1 {
		t.Fatalf("high watermark %d, want 1", hw)
	}
	slow := oneRecordProduce(t, "acks", 0, -1, 1500*time.Millisecond, "b")
	start := time.Now()
	c1 := p.send(slow)
	quick := oneRecordProduce(t, "acks", 0, 1, 5*time.Second, "c")
	c2 := p.send(quick)
	eventually(t, "the acks=1 record appended behind the waiting one", func() bool { return log.EndOffset() == 3 })
	if code, _ := produceCode(p.recv(slow, c1)); code != kerr.RequestTimedOut.Code {
		t.Fatalf("acks=all without followers: %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(code))
	}
	if took := time.Since(start); took < 1400*time.Millisecond {
		t.Fatalf("acks=all answered after %v, before its 1.5 s timeout", took)
	}
	if code, off := produceCode(p.recv(quick, c2)); code != 0 || off != 2 {
		t.Fatalf("acks=1 behind it: %v at %d", kerr.ErrorForCode(code), off)
	}
	if hw := latest(t, p, "acks", 0); hw != 1 {
		t.Fatalf("high watermark %d while the followers are paused, want 1", hw)
	}
	// A consumer reads up to the high watermark only.
	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(12)
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "acks"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	fsp := p.roundTrip(fetch).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if fsp.HighWatermark != 1 || nextOffsetOf(fsp.RecordBatches) != 1 {
		t.Fatalf("consumer fetch: high watermark %d, records up to %d; want 1 and 1", fsp.HighWatermark, nextOffsetOf(fsp.RecordBatches))
	}
	for _, f := range paused {
		f.Store(false)
	}
	eventually(t, "the high watermark at the end once the followers fetch", func() bool { return log.HighWatermark() == 3 })
	if code, _ := produceCode(p.roundTrip(oneRecordProduce(t, "acks", 0, -1, 5*time.Second, "d"))); code != 0 {
		t.Fatalf("acks=all after the followers resumed: %v", kerr.ErrorForCode(code))
	}
}

// nextOffsetOf is the offset after the last whole batch of records.
func nextOffsetOf(records []byte) int64 {
	var next int64
	for len(records) >= 61 {
		base := int64(binary.BigEndian.Uint64(records))
		size := int(binary.BigEndian.Uint32(records[8:])) + 12
		next = base + int64(binary.BigEndian.Uint32(records[23:])) + 1
		if size > len(records) {
			break
		}
		records = records[size:]
	}
	return next
}

// ISR: a follower that stops fetching while the leader has records it
// lacks leaves the ISR after replica.lag.time.max.ms and rejoins once
// caught up; with the ISR below
// min.insync.replicas acks=all gets NOT_ENOUGH_REPLICAS before anything is
// appended, acks=1 still appends, and the high watermark waits.
func TestClusterISRShrinkExpand(t *testing.T) {
	c, paused := replicationCluster(t, 3, map[string]string{"replica.lag.time.max.ms": "600", "min.insync.replicas": "2"})
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "isr", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("isr", 1)
	leaderID := c.Leader("isr", 0)
	leader := c.Broker(leaderID)
	eventually(t, "leadership on the leader", func() bool { return leader.topics.partition("isr", 0).leads() })
	p := dialPipe(t, leader)
	if code, _ := produceCode(p.roundTrip(oneRecordProduce(t, "isr", 0, -1, 5*time.Second, "a"))); code != 0 {
		t.Fatalf("acks=all: %v", kerr.ErrorForCode(code))
	}
	var followers []int32
	for id := int32(1); id <= 3; id++ {
		if id != leaderID {
			followers = append(followers, id)
		}
	}
	isr := func() []int32 { return partitionState(c, "isr", 0).ISR }
	// A follower lags only behind records it lacks (Kafka's isCaughtUp):
	// each pause is followed by an acks=1 record.
	paused[followers[0]].Store(true)
	if code, _ := produceCode(p.roundTrip(oneRecordProduce(t, "isr", 0, 1, 5*time.Second, "lag0"))); code != 0 {
		t.Fatalf("acks=1: %v", kerr.ErrorForCode(code))
	}
	eventually(t, "the paused follower out of the ISR", func() bool { return len(isr()) == 2 && !slices.Contains(isr(), followers[0]) })
	if code, _ := produceCode(p.roundTrip(oneRecordProduce(t, "isr", 0, -1, 5*time.Second, "b"))); code != 0 {
		t.Fatalf("acks=all with 2 in sync of min 2: %v", kerr.ErrorForCode(code))
	}
	paused[followers[1]].Store(true)
	if code, _ := produceCode(p.roundTrip(oneRecordProduce(t, "isr", 0, 1, 5*time.Second, "lag1"))); code != 0 {
		t.Fatalf("acks=1: %v", kerr.ErrorForCode(code))
	}
	eventually(t, "the ISR down to the leader", func() bool { return slices.Equal(isr(), []int32{leaderID}) })
	log := leader.topics.partition("isr", 0).log
	end := log.EndOffset()
	held := latest(t, p, "isr", 0)
	if held >= end {
		t.Fatalf("high watermark %d at the end %d although the last record reached no follower", held, end)
	}
	if code, _ := produceCode(p.roundTrip(oneRecordProduce(t, "isr", 0, -1, 5*time.Second, "c"))); code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with 1 in sync of min 2: %v, want NOT_ENOUGH_REPLICAS", kerr.ErrorForCode(code))
	}
	if log.EndOffset() != end {
		t.Fatal("NOT_ENOUGH_REPLICAS appended the records")
	}
	if code, off := produceCode(p.roundTrip(oneRecordProduce(t, "isr", 0, 1, 5*time.Second, "d"))); code != 0 || off != end {
		t.Fatalf("acks=1 with 1 in sync: %v at %d", kerr.ErrorForCode(code), off)
	}
	if hw := latest(t, p, "isr", 0); hw != held {
		t.Fatalf("high watermark %d below min.insync.replicas, want it held at %d", hw, held)
	}
	paused[followers[0]].Store(false)
	paused[followers[1]].Store(false)
	eventually(t, "both followers back in the ISR", func() bool { return len(isr()) == 3 })
	eventually(t, "the high watermark at the end", func() bool { return log.HighWatermark() == end+1 })
	for _, id := range followers {
		if got, want := logBytes(t, c.Broker(id), "isr", 0), logBytes(t, leader, "isr", 0); !bytes.Equal(got, want) {
			t.Fatalf("follower %d's log differs from the leader's", id)
		}
	}
}

// Divergence (KIP-279): records a leader took with acks=1 that no
// follower copied are truncated from it when it comes back as a follower
// of the leader elected meanwhile, and every replica ends byte-identical.
func TestClusterDivergentLeaderTruncates(t *testing.T) {
	c, paused := replicationCluster(t, 3, nil)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "div", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("div", 1)
	oldID := c.Leader("div", 0)
	old := c.Broker(oldID)
	eventually(t, "leadership on the leader", func() bool { return old.topics.partition("div", 0).leads() })
	p := dialPipe(t, old)
	for i := range 3 {
		if code, _ := produceCode(p.roundTrip(oneRecordProduce(t, "div", 0, -1, 5*time.Second, fmt.Sprint("committed", i)))); code != 0 {
			t.Fatalf("acks=all: %v", kerr.ErrorForCode(code))
		}
	}
	for id, f := range paused {
		if id != oldID {
			f.Store(true)
		}
	}
	for i := range 4 {
		if code, _ := produceCode(p.roundTrip(oneRecordProduce(t, "div", 0, 1, 5*time.Second, fmt.Sprint("lost", i)))); code != 0 {
			t.Fatalf("acks=1: %v", kerr.ErrorForCode(code))
		}
	}
	if end := old.topics.partition("div", 0).log.EndOffset(); end != 7 {
		t.Fatalf("old leader's end offset %d, want 7", end)
	}
	oldEpoch := partitionState(c, "div", 0).LeaderEpoch
	c.Kill(oldID)
	for _, f := range paused {
		f.Store(false)
	}
	var newID int32
	eventually(t, "a new leader", func() bool {
		st := partitionState(c, "div", 0)
		newID = st.Leader
		return st.Leader >= 0 && st.Leader != oldID && st.LeaderEpoch > oldEpoch
	})
	nb := c.Broker(newID)
	eventually(t, "leadership on the new leader", func() bool { return nb.topics.partition("div", 0).leads() })
	np := dialPipe(t, nb)
	for i := range 2 {
		if code, _ := produceCode(np.roundTrip(oneRecordProduce(t, "div", 0, -1, 5*time.Second, fmt.Sprint("new", i)))); code != 0 {
			t.Fatalf("acks=all to the new leader: %v", kerr.ErrorForCode(code))
		}
	}
	c.Restart(oldID)
	want := logBytes(t, nb, "div", 0)
	end := nb.topics.partition("div", 0).log.EndOffset()
	// 3 committed + 2 new: the paused followers copied none of the acks=1
	// records (replicationPause drops a fetch in flight across a pause).
	if end != 5 {
		t.Fatalf("new leader's end offset %d, want 5 (3 committed + 2 new)", end)
	}
	back := c.Broker(oldID)
	eventually(t, "the old leader truncated and caught up", func() bool {
		l := back.topics.partition("div", 0).log
		return l.EndOffset() == end && bytes.Equal(logBytes(t, back, "div", 0), want)
	})
	for id := int32(1); id <= 3; id++ {
		if got := logBytes(t, c.Broker(id), "div", 0); !bytes.Equal(got, want) {
			t.Fatalf("node %d's log differs from the leader's", id)
		}
	}
}

// The high watermarks are written to replication-offset-checkpoint on a
// clean shutdown, as Kafka lays the file out, and read back at start.
func TestClusterHighWatermarkCheckpoint(t *testing.T) {
	c, _ := replicationCluster(t, 3, nil)
	cl := clusterClient(t, c, kgo.DefaultProduceTopic("hwc"))
	if err := createTopic(t, cl, "hwc", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("hwc", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for i := range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	follower := int32(1)
	if c.Leader("hwc", 0) == follower {
		follower = 2
	}
	b := c.Broker(follower)
	eventually(t, "the follower's high watermark", func() bool { return b.topics.partition("hwc", 0).log.HighWatermark() == 5 })
	dir := c.cfgs[follower].DataDir
	c.Stop(follower)
	m, err := storage.ReadOffsetCheckpoint(storage.OSFS{}, dir+"/"+replicationCheckpoint)
	if err != nil {
		t.Fatal(err)
	}
	if got := m[storage.TopicPartition{Topic: "hwc", Partition: 0}]; got != 5 {
		t.Fatalf("checkpointed high watermark %d, want 5 (file: %v)", got, m)
	}
	c.Restart(follower)
	if got := c.Broker(follower).cluster.checkpointed("hwc", 0); got != 5 {
		t.Fatalf("high watermark read back at start %d, want 5", got)
	}
}

// lastBatchEpoch is the partition leader epoch of the last batch in records.
func lastBatchEpoch(t *testing.T, records []byte) int32 {
	t.Helper()
	epoch := int32(-2)
	for len(records) >= 61 {
		size := int(binary.BigEndian.Uint32(records[8:])) + 12
		if size > len(records) {
			break
		}
		epoch = int32(binary.BigEndian.Uint32(records[12:]))
		records = records[size:]
	}
	if epoch == -2 {
		t.Fatal("no batch in the log")
	}
	return epoch
}

// A transaction marker is written as the partition's leader at its leader
// epoch and counts as written only once the in-sync replicas have it
// (Kafka writes markers with acks=all): with the followers paused the
// write times out and the high watermark stays before it.
func TestClusterTxnMarkerReplicated(t *testing.T) {
	c, paused := replicationCluster(t, 3, nil)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "markers", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("markers", 1)
	leaderID := c.Leader("markers", 0)
	leader := c.Broker(leaderID)
	p := dialPipe(t, leader)
	eventually(t, "leadership on the leader", func() bool { return leader.topics.partition("markers", 0).leads() })
	if code, _ := produceCode(p.roundTrip(oneRecordProduce(t, "markers", 0, -1, 5*time.Second, "a"))); code != 0 {
		t.Fatalf("acks=all with every follower: %v", kerr.ErrorForCode(code))
	}
	for id, f := range paused {
		if id != leaderID {
			f.Store(true)
		}
	}
	log := leader.topics.partition("markers", 0).log
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err := txnBackend{leader}.writeMarkerHere(ctx, "markers", 0, txnMarker{producerID: 7, commit: true})
	cancel()
	if !errors.Is(err, kerr.RequestTimedOut) {
		t.Fatalf("marker with the followers paused: %v, want REQUEST_TIMED_OUT", err)
	}
	if log.EndOffset() != 2 || log.HighWatermark() != 1 {
		t.Fatalf("log end %d, high watermark %d; want 2 and 1", log.EndOffset(), log.HighWatermark())
	}
	for _, f := range paused {
		f.Store(false)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := (txnBackend{leader}).writeMarkerHere(ctx, "markers", 0, txnMarker{producerID: 7}); err != nil {
		t.Fatalf("marker with the followers fetching: %v", err)
	}
	if log.HighWatermark() != 3 {
		t.Fatalf("high watermark %d after the marker was written, want 3", log.HighWatermark())
	}
	epoch := partitionState(c, "markers", 0).LeaderEpoch
	for id := range paused {
		b := c.Broker(id)
		eventually(t, "the marker on every replica", func() bool { return b.topics.partition("markers", 0).log.EndOffset() == 3 })
		if got := lastBatchEpoch(t, logBytes(t, b, "markers", 0)); got != epoch {
			t.Fatalf("node %d: the marker's leader epoch is %d, want the partition's %d", b.nodeID, got, epoch)
		}
	}
}

// An append wakes the followers' fetches parked at the leader, so acks=all
// takes one fetch round trip, not replica.fetch.wait.max.ms: with that at
// 30 s every produce (3 s timeout) still completes.
func TestClusterAppendWakesParkedFollowerFetch(t *testing.T) {
	c, _ := replicationCluster(t, 3, map[string]string{"replica.fetch.wait.max.ms": "30000", "replica.lag.time.max.ms": "60000"})
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "parked", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("parked", 1)
	leader := c.Broker(c.Leader("parked", 0))
	p := dialPipe(t, leader)
	eventually(t, "leadership on the leader", func() bool { return leader.topics.partition("parked", 0).leads() })
	for i := range 5 {
		// Between produces the followers have caught up and park their
		// next fetch for up to 30 s.
		time.Sleep(100 * time.Millisecond)
		if code, _ := produceCode(p.roundTrip(oneRecordProduce(t, "parked", 0, -1, 3*time.Second, "a"))); code != 0 {
			t.Fatalf("acks=all produce %d: %v", i, kerr.ErrorForCode(code))
		}
	}
}

// A node's heartbeats do not queue behind its other requests to the
// controller's node: a forwarded transaction marker waiting there for the
// high watermark (the followers paused) holds its own connection only,
// and the sender stays unfenced past broker.session.timeout.ms.
func TestClusterHeartbeatsNotHeldBackByWaitingRequests(t *testing.T) {
	c, paused := replicationCluster(t, 3, nil)
	cl := clusterClient(t, c)
	if err := createTopic(t, cl, "hol", 3, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("hol", 3)
	ctrl := c.Controller()
	part := int32(-1)
	for i := range int32(3) {
		if c.Leader("hol", i) == ctrl {
			part = i
		}
	}
	if part < 0 {
		t.Fatal("no partition of hol led by the controller")
	}
	eventually(t, "leadership on the controller", func() bool { return c.Broker(ctrl).topics.partition("hol", part).leads() })
	var sender int32
	for id, f := range paused {
		if id != ctrl {
			f.Store(true)
			sender = id
		}
	}
	defer func() {
		for _, f := range paused {
			f.Store(false)
		}
	}()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		done <- c.Broker(sender).cluster.forwardMarker(ctx, ctrl, "hol", part, txnMarker{producerID: 7, commit: true})
	}()
	session := time.Duration(c.Broker(ctrl).cfg.BrokerSessionTimeoutMs) * time.Millisecond
	for end := time.Now().Add(2 * session); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		fenced := true
		c.Broker(ctrl).cluster.q.View(func(img *metadata.Image) {
			if br := img.Brokers[sender]; br != nil {
				fenced = br.Fenced
			}
		})
		if fenced {
			t.Fatalf("node %d fenced while its marker waited at the controller", sender)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("the marker returned (%v) before the followers fetched it", err)
	default:
	}
}
