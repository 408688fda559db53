package metadata

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// cluster is an image with brokers 1..n registered and unfenced, each in
// the rack racks[i] ("" without racks).
func cluster(t *testing.T, n int, racks ...string) *Image {
	t.Helper()
	img := NewImage()
	var recs []Record
	for i := range n {
		rack := ""
		if len(racks) > 0 {
			rack = racks[i]
		}
		recs = append(recs, &RegisterBroker{ID: int32(i + 1), Epoch: int64(i + 1), Rack: rack})
	}
	apply(t, img, recs)
	return img
}

// apply applies recs as the next batch, as every node does.
func apply(t *testing.T, img *Image, recs []Record) {
	t.Helper()
	// Through the encoding, as records arrive from the log.
	decoded, err := DecodeBatch(EncodeBatch(recs...))
	if err != nil {
		t.Fatal(err)
	}
	if err := img.Apply(img.Offset+1, decoded); err != nil {
		t.Fatal(err)
	}
}

func partition(img *Image, topic string, p int) PartitionState {
	return img.Topics[topic].Partitions[p]
}

func TestPlacementSpreadsLeadersAndReplicas(t *testing.T) {
	img := cluster(t, 3)
	for start := range 3 {
		placed, err := img.PlaceReplicas(12, 3, start)
		if err != nil {
			t.Fatal(err)
		}
		leaders, replicas := map[int32]int{}, map[int32]int{}
		for _, rs := range placed {
			leaders[rs[0]]++
			for _, r := range rs {
				replicas[r]++
			}
			if s := slices.Sorted(slices.Values(rs)); !slices.Equal(s, []int32{1, 2, 3}) {
				t.Fatalf("replicas %v: want each broker once", rs)
			}
		}
		if !reflect.DeepEqual(leaders, map[int32]int{1: 4, 2: 4, 3: 4}) || !reflect.DeepEqual(replicas, map[int32]int{1: 12, 2: 12, 3: 12}) {
			t.Errorf("start %d: leaders %v, replicas %v; want 4 leaders and 12 replicas each", start, leaders, replicas)
		}
	}
	if _, err := img.PlaceReplicas(1, 4, 0); !errors.Is(err, kerr.InvalidReplicationFactor) ||
		!strings.HasSuffix(err.Error(), ": Replication factor: 4 larger than available brokers: 3.") {
		t.Errorf("rf 4 on 3 brokers: %v", err)
	}
}

func TestPlacementIsRackAware(t *testing.T) {
	img := cluster(t, 6, "a", "a", "b", "b", "c", "c")
	placed, err := img.PlaceReplicas(30, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int{}
	for _, rs := range placed {
		leaders[rs[0]]++
		seen := map[string]bool{}
		for _, r := range rs {
			rack := img.Brokers[r].Rack
			if seen[rack] {
				t.Fatalf("replicas %v put two in rack %s", rs, rack)
			}
			seen[rack] = true
		}
	}
	for id := int32(1); id <= 6; id++ {
		if leaders[id] != 5 {
			t.Errorf("leaders %v: want 5 per broker", leaders)
			break
		}
	}
}

func TestPlacementAvoidsFencedLeaders(t *testing.T) {
	img := cluster(t, 3)
	apply(t, img, []Record{&BrokerChange{ID: 2, Epoch: 2, Fenced: boolp(true)}})
	placed, err := img.PlaceReplicas(9, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range placed {
		if rs[0] == 2 {
			t.Errorf("replicas %v: the fenced broker is the preferred leader", rs)
		}
	}
	apply(t, img, []Record{&BrokerChange{ID: 1, Epoch: 1, Fenced: boolp(true)}, &BrokerChange{ID: 3, Epoch: 3, Fenced: boolp(true)}})
	if _, err := img.PlaceReplicas(1, 1, 0); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Errorf("every broker fenced: %v", err)
	}
}

func TestCreateTopicAndPartitions(t *testing.T) {
	img := cluster(t, 3)
	recs, err := img.CreateTopic("orders", [16]byte{7}, 3, 2, nil, map[string]string{"retention.ms": "1000"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, img, recs)
	top := img.Topics["orders"]
	if top == nil || len(top.Partitions) != 3 || img.Configs[ConfigResource{ConfigTopic, "orders"}]["retention.ms"] != "1000" {
		t.Fatalf("topic %+v, configs %v", top, img.Configs)
	}
	for i, p := range top.Partitions {
		if len(p.Replicas) != 2 || !slices.Equal(p.ISR, p.Replicas) || p.Leader != p.Replicas[0] || p.LeaderEpoch != 0 {
			t.Errorf("partition %d: %+v", i, p)
		}
	}
	if _, err := img.CreateTopic("orders", [16]byte{8}, 1, 1, nil, nil, 0); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Errorf("again: %v", err)
	}
	if _, err := img.CreateTopic("x", [16]byte{9}, 0, 0, [][]int32{{1, 1}}, nil, 0); !errors.Is(err, kerr.InvalidReplicaAssignment) {
		t.Errorf("broker twice: %v", err)
	}
	if _, err := img.CreateTopic("x", [16]byte{9}, 0, 0, [][]int32{{4}}, nil, 0); !errors.Is(err, kerr.InvalidReplicaAssignment) {
		t.Errorf("unknown broker: %v", err)
	}

	recs, err = img.CreatePartitions("orders", 5, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, img, recs)
	if n := len(img.Topics["orders"].Partitions); n != 5 {
		t.Errorf("%d partitions after CreatePartitions 5", n)
	}
	if _, err := img.CreatePartitions("orders", 4, nil, 0); !errors.Is(err, kerr.InvalidPartitions) {
		t.Errorf("fewer partitions: %v", err)
	}
	recs, _ = img.DeleteTopic("orders")
	apply(t, img, recs)
	if len(img.Topics) != 0 || len(img.TopicsByID) != 0 || len(img.Configs) != 0 {
		t.Errorf("after delete: %+v %+v", img.Topics, img.Configs)
	}
}

func TestFencingMovesLeadershipAndShrinksISR(t *testing.T) {
	img := cluster(t, 3)
	recs, _ := img.CreateTopic("t", [16]byte{1}, 0, 0, [][]int32{{1, 2, 3}, {2, 1}, {1}}, nil, 0)
	apply(t, img, recs)

	recs, err := img.FenceBroker(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, img, recs)
	if !img.Brokers[1].Fenced {
		t.Error("broker 1 not fenced")
	}
	p0, p1, p2 := partition(img, "t", 0), partition(img, "t", 1), partition(img, "t", 2)
	if p0.Leader != 2 || !slices.Equal(p0.ISR, []int32{2, 3}) || p0.LeaderEpoch != 1 || p0.PartitionEpoch != 1 {
		t.Errorf("p0 led by the fenced broker: %+v", p0)
	}
	if p1.Leader != 2 || !slices.Equal(p1.ISR, []int32{2}) || p1.LeaderEpoch != 0 {
		t.Errorf("p1 followed by the fenced broker: %+v", p1)
	}
	// Its only replica fenced, p2 goes offline and keeps its ISR, so that
	// the replica with the data leads again when it returns.
	if p2.Leader != NoLeader || !slices.Equal(p2.ISR, []int32{1}) {
		t.Errorf("p2 on the fenced broker alone: %+v", p2)
	}

	recs, _ = img.UnfenceBroker(1)
	apply(t, img, recs)
	if p2 = partition(img, "t", 2); p2.Leader != 1 || p2.LeaderEpoch != 2 {
		t.Errorf("p2 after broker 1 returned: %+v", p2)
	}
	// Back in no ISR until it catches up (AlterPartition), so p0 stays led
	// by 2; the preferred election has nothing to do yet.
	out, notNeeded, failed := img.ElectPreferred(map[string][]int32{"t": {0, 2}})
	if len(out) != 0 || !slices.Equal(notNeeded["t"], []int32{2}) || !slices.Equal(failed["t"], []int32{0}) {
		t.Errorf("preferred election: %v, not needed %v, failed %v", out, notNeeded, failed)
	}
	ch := &PartitionChange{TopicID: [16]byte{1}, Partition: 0, Leader: NoLeaderChange}
	apply(t, img, []Record{ch.SetISR([]int32{2, 3, 1})})
	out, _, _ = img.ElectPreferred(nil)
	apply(t, img, out)
	if p0 = partition(img, "t", 0); p0.Leader != 1 {
		t.Errorf("p0 after the preferred election: %+v", p0)
	}
}

func TestUncleanElection(t *testing.T) {
	img := cluster(t, 2)
	recs, _ := img.CreateTopic("t", [16]byte{1}, 0, 0, [][]int32{{1, 2}}, nil, 0)
	apply(t, img, recs)
	ch := &PartitionChange{TopicID: [16]byte{1}, Partition: 0, Leader: NoLeaderChange}
	apply(t, img, []Record{ch.SetISR([]int32{1})}) // 2 fell behind

	clean, _ := img.FenceBroker(1, nil)
	unclean, _ := img.FenceBroker(1, func(topic string) bool { return topic == "t" })
	c := img.Clone()
	apply(t, c, clean)
	if p := partition(c, "t", 0); p.Leader != NoLeader || !slices.Equal(p.ISR, []int32{1}) {
		t.Errorf("clean: %+v", p)
	}
	apply(t, img, unclean)
	if p := partition(img, "t", 0); p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) {
		t.Errorf("unclean: %+v", p)
	}
}

func TestControlledShutdown(t *testing.T) {
	img := cluster(t, 3)
	recs, _ := img.CreateTopic("t", [16]byte{1}, 6, 3, nil, nil, 0)
	apply(t, img, recs)
	recs, _ = img.ShutDownBroker(2, nil)
	apply(t, img, recs)
	for i, p := range img.Topics["t"].Partitions {
		if p.Leader == 2 || slices.Contains(p.ISR, 2) {
			t.Errorf("partition %d still uses the broker shutting down: %+v", i, p)
		}
	}
	if placed, _ := img.PlaceReplicas(3, 2, 0); slices.ContainsFunc(placed, func(rs []int32) bool { return slices.Contains(rs, 2) }) {
		t.Errorf("placement %v uses the broker shutting down", placed)
	}
}

func TestSnapshotRebuildsTheImage(t *testing.T) {
	img := cluster(t, 3, "a", "b", "c")
	recs, _ := img.CreateTopic("t", [16]byte{1}, 4, 3, nil, map[string]string{"cleanup.policy": "compact"}, 2)
	apply(t, img, recs)
	recs, _ = img.ShutDownBroker(3, nil)
	apply(t, img, recs)
	apply(t, img, []Record{&Config{ResourceType: ConfigBroker, Name: "log.retention.ms", Value: str("5")}, &ProducerIDs{BrokerID: 1, NextProducerID: 1000}})

	snap := img.Records()
	again := NewImage()
	if err := again.Apply(img.Offset, snap); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(img, again) {
		t.Errorf("snapshot rebuilt\n%+v\nfrom\n%+v", again, img)
	}
	if c := img.Clone(); !reflect.DeepEqual(c, img) {
		t.Error("clone differs")
	}
}

func TestApplyRefusesWhatDoesNotFit(t *testing.T) {
	img := cluster(t, 1)
	for _, r := range []Record{
		&Partition{TopicID: [16]byte{5}},
		&PartitionChange{TopicID: [16]byte{5}, Leader: 1},
		&BrokerChange{ID: 1, Epoch: 99},
		&UnregisterBroker{ID: 7},
		&RemoveTopic{ID: [16]byte{5}},
	} {
		if err := img.Clone().Apply(9, []Record{r}); err == nil {
			t.Errorf("%T %+v applied", r, r)
		}
	}
}

// Unregistering a broker moves its leaderships and ISR memberships away
// first, then drops its registration; an unknown id is
// BROKER_ID_NOT_REGISTERED.
func TestUnregisterBroker(t *testing.T) {
	img := cluster(t, 3)
	recs, err := img.CreateTopic("t", [16]byte{1}, 0, 0, [][]int32{{1, 2}, {2, 3}, {1}}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, img, recs)
	if recs, err = img.UnregisterBroker(1, nil); err != nil {
		t.Fatal(err)
	}
	apply(t, img, recs)
	if img.Brokers[1] != nil {
		t.Fatal("broker 1 still registered")
	}
	ps := img.Topics["t"].Partitions
	if ps[0].Leader != 2 || !slices.Equal(ps[0].ISR, []int32{2}) {
		t.Errorf("partition 0: leader %d ISR %v, want 2 [2]", ps[0].Leader, ps[0].ISR)
	}
	if ps[1].Leader != 2 || !slices.Equal(ps[1].ISR, []int32{2, 3}) {
		t.Errorf("partition 1 changed: leader %d ISR %v", ps[1].Leader, ps[1].ISR)
	}
	// Its only replica gone: offline, the ISR kept to name who has the data.
	if ps[2].Leader != NoLeader || !slices.Equal(ps[2].ISR, []int32{1}) {
		t.Errorf("partition 2: leader %d ISR %v, want none [1]", ps[2].Leader, ps[2].ISR)
	}
	if _, err := img.UnregisterBroker(1, nil); !errors.Is(err, kerr.BrokerIDNotRegistered) {
		t.Errorf("unregistering broker 1 again: %v", err)
	}
}
