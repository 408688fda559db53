package broker

import (
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

	c.followCoordinators(img) // an image of the last run
	if len(c.moves.queue) != 0 {
		t.Fatalf("loads queued from an image before this run's registration: %+v", c.moves.queue)
	}

	// Applied up to the registration: node 2 took over the transaction
	// state partition while node 1 was down.
	img.Brokers[1] = &metadata.Broker{RegisterBroker: metadata.RegisterBroker{ID: 1, Epoch: 40, Fenced: true}}
	img.Topics[txnStateTopic].Partitions[0].Leader = 2
	c.followCoordinators(img)
	want := []coordinatorMove{{internalPartition{offsetsTopic, 1}, true}}
	if len(c.moves.queue) != 1 || c.moves.queue[0] != want[0] {
		t.Fatalf("moves once registered: %+v, want %+v", c.moves.queue, want)
	}

	// From then on every image counts, whatever the broker's state.
	img.Brokers[1].Epoch = 41
	img.Topics[txnStateTopic].Partitions[1].Leader = 1
	c.followCoordinators(img)
	if q := c.moves.queue; len(q) != 2 || q[1] != (coordinatorMove{internalPartition{txnStateTopic, 1}, true}) {
		t.Fatalf("moves after a later change: %+v", q)
	}
}
