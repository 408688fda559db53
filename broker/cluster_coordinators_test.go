package broker

import (
	"maps"
	"testing"

	"github.com/kafkit/kafkit/internal/metadata"
)

// A restarted node applies the metadata log from its start: on the way it
// leads, at old epochs, the internal partitions it led before it went
// down. Its coordinators load nothing until the image holds this run's
// registration (everything the cluster did meanwhile is applied by then),
// and then load what it leads in that image.
func TestCoordinatorsWaitForOwnRegistration(t *testing.T) {
	c := &cluster{b: &Broker{nodeID: 1}}
	c.moves.wake = make(chan struct{}, 1)
	c.epoch.Store(40) // this run's registration
	img := metadata.NewImage()
	img.Brokers[1] = &metadata.Broker{RegisterBroker: metadata.RegisterBroker{ID: 1, Epoch: 7}} // the last run's
	img.Topics[txnStateTopic] = &metadata.TopicImage{Name: txnStateTopic, Partitions: []metadata.PartitionState{{Leader: 1}, {Leader: 2}}}
	img.Topics[offsetsTopic] = &metadata.TopicImage{Name: offsetsTopic, Partitions: []metadata.PartitionState{{Leader: 2}, {Leader: 1}}}

	c.catchUp(img)
	c.followCoordinators(img) // an image of the last run
	if len(c.moves.queue) != 0 {
		t.Fatalf("loads queued from an image before this run's registration: %+v", c.moves.queue)
	}

	// Applied up to the registration: node 2 took over the transaction
	// state partition while node 1 was down.
	img.Brokers[1] = &metadata.Broker{RegisterBroker: metadata.RegisterBroker{ID: 1, Epoch: 40, Fenced: true}}
	img.Topics[txnStateTopic].Partitions[0].Leader = 2
	c.catchUp(img)
	c.followCoordinators(img)
	want := []coordinatorMove{{internalPartition: internalPartition{offsetsTopic, 1}, lead: true, epoch: img.Topics[offsetsTopic].Partitions[1].LeaderEpoch}}
	if len(c.moves.queue) != 1 || c.moves.queue[0] != want[0] {
		t.Fatalf("moves once registered: %+v, want %+v", c.moves.queue, want)
	}

	// From then on every image counts, whatever the broker's state.
	img.Brokers[1].Epoch = 41
	img.Topics[txnStateTopic].Partitions[1].Leader = 1
	img.Topics[txnStateTopic].Partitions[1].LeaderEpoch = 3
	c.catchUp(img)
	c.followCoordinators(img)
	// The load carries the leader epoch: the coordinator epoch of its markers.
	if q := c.moves.queue; len(q) != 2 || q[1] != (coordinatorMove{internalPartition: internalPartition{txnStateTopic, 1}, lead: true, epoch: 3}) {
		t.Fatalf("moves after a later change: %+v", q)
	}
}

// Replication waits for the registration in the same way: the partitions a
// restarted node led or followed in its last run are not started from the
// images on the way, and once registered it starts every partition of the
// image it caught up with, changed in that batch or not.
func TestReplicationWaitsForOwnRegistration(t *testing.T) {
	c := &cluster{b: &Broker{nodeID: 1}}
	c.epoch.Store(40)
	img := metadata.NewImage()
	img.Brokers[1] = &metadata.Broker{RegisterBroker: metadata.RegisterBroker{ID: 1, Epoch: 7}}
	a, b := &metadata.TopicImage{Name: "a", ID: [16]byte{1}, Partitions: make([]metadata.PartitionState, 2)}, &metadata.TopicImage{Name: "b", ID: [16]byte{2}, Partitions: make([]metadata.PartitionState, 1)}
	img.TopicsByID[a.ID], img.TopicsByID[b.ID] = a, b
	change := []metadata.Record{&metadata.PartitionChange{TopicID: a.ID, Partition: 0, Leader: 1}}

	if brokers, touched := c.replicationChanges(change, img, c.catchUp(img)); brokers || len(touched) != 0 {
		t.Fatalf("before this run's registration: brokers %v, partitions %v", brokers, touched)
	}
	img.Brokers[1].Epoch = 40
	brokers, touched := c.replicationChanges(change, img, c.catchUp(img))
	want := map[partitionKey]bool{{a.ID, 0}: true, {a.ID, 1}: true, {b.ID, 0}: true}
	if !brokers || !maps.Equal(touched, want) {
		t.Fatalf("once registered: brokers %v, partitions %v, want every partition %v", brokers, touched, want)
	}
	if brokers, touched := c.replicationChanges(change, img, c.catchUp(img)); brokers || len(touched) != 1 || !touched[partitionKey{a.ID, 0}] {
		t.Fatalf("afterwards only the batch's changes count: brokers %v, partitions %v", brokers, touched)
	}
}
