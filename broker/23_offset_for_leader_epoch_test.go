package broker

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

type ofleCase struct {
	topic          string
	partition      int32
	version        int16
	replica        int32
	current, epoch int32
	code           int16
	wantEpoch      int32
	wantEnd        int64
}

// ofleRequest asks one partition of the node behind c, at tc's version.
func ofleRequest(t *testing.T, c *rawConn, tc ofleCase) kmsg.OffsetForLeaderEpochResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.SetVersion(tc.version)
	req.ReplicaID = tc.replica
	req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: tc.topic, Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{
		{Partition: tc.partition, CurrentLeaderEpoch: tc.current, LeaderEpoch: tc.epoch}}}}
	return c.roundTrip(req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
}

func checkOFLE(t *testing.T, cl *rawConn, cases []ofleCase) {
	t.Helper()
	for _, tc := range cases {
		p := ofleRequest(t, cl, tc)
		if p.ErrorCode != tc.code || p.LeaderEpoch != tc.wantEpoch || p.EndOffset != tc.wantEnd {
			t.Errorf("%+v: got code %d epoch %d end %d", tc, p.ErrorCode, p.LeaderEpoch, p.EndOffset)
		}
	}
}

// On a single node every partition is led at epoch 0: the cache of a
// produced-to partition holds (0, 0), an empty one answers as Kafka's
// leader, which assigned its epoch at the log end when it became leader.
func TestOffsetForLeaderEpoch(t *testing.T) {
	b := NewTest(t)
	cl := nodeClient(t, b)
	ctx := context.Background()
	for _, name := range []string{"t", "empty"} {
		if _, err := b.topics.create(createSpec{name: name, partitions: 1, replicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// leader-epoch-checkpoint as Kafka writes it.
	got, err := readFile(b.fs, filepath.Join(b.topics.get("t").partitions[0].log.Dir(), "leader-epoch-checkpoint"))
	if err != nil || string(got) != "0\n1\n0 0\n" {
		t.Errorf("leader-epoch-checkpoint: %q, %v", got, err)
	}
	undefined := func(tc ofleCase) ofleCase { tc.wantEpoch, tc.wantEnd = -1, -1; return tc }
	checkOFLE(t, dial(t, b), []ofleCase{
		{topic: "t", version: 4, replica: -1, current: 0, epoch: 0, wantEpoch: 0, wantEnd: 3},
		{topic: "t", version: 3, replica: 1, current: -1, epoch: 0, wantEpoch: 0, wantEnd: 3}, // a follower's request
		{topic: "t", version: 1, current: 9, epoch: 0, wantEpoch: 0, wantEnd: 3},              // v0-1: no current epoch
		{topic: "empty", version: 4, replica: -1, current: 0, epoch: 0, wantEpoch: 0, wantEnd: 0},
		undefined(ofleCase{topic: "t", version: 4, replica: -1, current: -1, epoch: 5}), // above the latest
		undefined(ofleCase{topic: "t", version: 4, replica: -1, current: 0, epoch: -1}), // UNDEFINED_EPOCH
		undefined(ofleCase{topic: "t", version: 2, current: 7, epoch: 0, code: kerr.UnknownLeaderEpoch.Code}),
		undefined(ofleCase{topic: "nope", version: 4, replica: -1, epoch: 0, code: kerr.UnknownTopicOrPartition.Code}),
		undefined(ofleCase{topic: "t", partition: 3, version: 4, replica: -1, epoch: 0, code: kerr.UnknownTopicOrPartition.Code}),
		undefined(ofleCase{topic: "t", partition: -1, version: 4, replica: -1, epoch: 0, code: kerr.UnknownTopicOrPartition.Code}),
	})
}

// On a cluster the current leader epoch is the metadata's: after the
// leader's controlled shutdown the new leader fences the old epoch,
// does not know a newer one, and answers the old epoch's end at the
// start of its own; a follower refuses (also a replica's request).
func TestClusterOffsetForLeaderEpoch(t *testing.T) {
	c := NewTestCluster(t, 3)
	if err := createTopic(t, clusterClient(t, c), "ofle", 1, 3); err != nil {
		t.Fatal(err)
	}
	c.AwaitTopic("ofle", 1)
	old := c.Leader("ofle", 0)
	c.Stop(old)
	// Both remaining nodes must see the new leader and epoch.
	var p metadata.PartitionState
	c.await("a new leader of ofle-0 on both nodes", func(*Broker) bool {
		var states []metadata.PartitionState
		for id := int32(1); id <= 3; id++ {
			if id != old {
				c.Broker(id).cluster.q.View(func(img *metadata.Image) { states = append(states, img.Topics["ofle"].Partitions[0]) })
			}
		}
		p = states[0]
		return p.Leader >= 0 && p.Leader != old && states[1].Leader == p.Leader && states[1].LeaderEpoch == p.LeaderEpoch
	})
	follower := int32(6) - old - p.Leader
	lcl, fcl := dial(t, c.Broker(p.Leader)), dial(t, c.Broker(follower))
	e := p.LeaderEpoch
	if e < 1 {
		t.Fatalf("leader epoch %d after a leader change", e)
	}
	end := c.Broker(p.Leader).topics.get("ofle").partitions[0].log.EndOffset()
	checkOFLE(t, lcl, []ofleCase{
		{topic: "ofle", version: 4, replica: -1, current: e, epoch: e, wantEpoch: e, wantEnd: end},
		{topic: "ofle", version: 4, replica: follower, current: e, epoch: e - 1, wantEpoch: e - 1, wantEnd: end},
		{topic: "ofle", version: 4, replica: -1, current: e - 1, epoch: e - 1, code: kerr.FencedLeaderEpoch.Code, wantEpoch: -1, wantEnd: -1},
		{topic: "ofle", version: 4, replica: -1, current: e + 1, epoch: e, code: kerr.UnknownLeaderEpoch.Code, wantEpoch: -1, wantEnd: -1},
		{topic: "nope", version: 4, replica: -1, current: -1, epoch: 0, code: kerr.UnknownTopicOrPartition.Code, wantEpoch: -1, wantEnd: -1},
	})
	checkOFLE(t, fcl, []ofleCase{
		{topic: "ofle", version: 4, replica: -1, current: e, epoch: e, code: kerr.NotLeaderForPartition.Code, wantEpoch: -1, wantEnd: -1},
		{topic: "ofle", version: 4, replica: p.Leader, current: -1, epoch: e, code: kerr.NotLeaderForPartition.Code, wantEpoch: -1, wantEnd: -1},
		{topic: "ofle", version: 4, replica: -1, current: e - 1, epoch: e, code: kerr.FencedLeaderEpoch.Code, wantEpoch: -1, wantEnd: -1},
	})
}
