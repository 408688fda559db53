package metadata

import (
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The controller's decisions. Each reads the image and returns the records
// that carry the decision out; nothing here changes the image, so the
// active controller can check a decision, append its records to the log,
// and let Apply change every node's image alike.

// live reports whether broker id can lead: registered, unfenced and not
// shutting down.
func (img *Image) live(id int32) bool {
	b := img.Brokers[id]
	return b != nil && !b.Fenced && !b.ShuttingDown
}

// brokerList is one rack's brokers of one kind (fenced or not) for
// placement: each partition (epoch) starts one broker further, and takes
// each broker at most once.
type brokerList struct {
	ids                  []int32
	index, offset, epoch int
}

func (l *brokerList) next(epoch int) (int32, bool) {
	if len(l.ids) == 0 {
		return 0, false
	}
	if l.epoch != epoch {
		l.epoch, l.index, l.offset = epoch, 0, (l.offset+1)%len(l.ids)
	}
	if l.index >= len(l.ids) {
		return 0, false
	}
	id := l.ids[(l.index+l.offset)%len(l.ids)]
	l.index++
	return id, true
}

type placementRack struct{ unfenced, fenced brokerList }

func (r *placementRack) next(epoch int) (int32, bool) {
	if id, ok := r.unfenced.next(epoch); ok {
		return id, true
	}
	return r.fenced.next(epoch)
}

// PlaceReplicas places partitions × rf replicas on the registered brokers
// as KRaft's StripedReplicaPlacer does: racks in turn, each partition
// starting one rack and one broker further (the stripes), brokers that are
// not fenced before fenced ones, and a first replica (the preferred leader)
// that is not fenced. start shifts the pattern (the controller passes a
// random one, as Kafka starts at random), so that topics do not all lead on
// the same brokers; the same start gives the same placement.
func (img *Image) PlaceReplicas(partitions, rf, start int) ([][]int32, error) {
	if rf <= 0 {
		return nil, fmt.Errorf("%w: Invalid replication factor %d: the replication factor must be positive.", kerr.InvalidReplicationFactor, rf)
	}
	racks := map[string]*placementRack{}
	total, unfenced := 0, 0
	for _, id := range slices.Sorted(maps.Keys(img.Brokers)) {
		b := img.Brokers[id]
		if b.ShuttingDown {
			continue
		}
		r := racks[b.Rack]
		if r == nil {
			r = &placementRack{}
			racks[b.Rack] = r
		}
		total++
		if b.Fenced {
			r.fenced.ids = append(r.fenced.ids, id)
		} else {
			unfenced++
			r.unfenced.ids = append(r.unfenced.ids, id)
		}
	}
	if rf > total {
		return nil, fmt.Errorf("%w: Replication factor: %d larger than available brokers: %d.", kerr.InvalidReplicationFactor, rf, total)
	}
	if unfenced == 0 {
		return nil, fmt.Errorf("%w: All brokers are currently fenced.", kerr.InvalidReplicationFactor)
	}
	names := slices.Sorted(maps.Keys(racks))
	start = max(start, 0)
	for _, r := range racks {
		for _, l := range []*brokerList{&r.unfenced, &r.fenced} {
			if len(l.ids) > 0 {
				l.offset = start % len(l.ids)
			}
		}
	}
	out := make([][]int32, partitions)
	offset := start % len(names)
	for epoch := range out {
		replicas := make([]int32, 0, rf)
		first := offset
		for {
			if id, ok := racks[names[first]].unfenced.next(epoch); ok {
				replicas = append(replicas, id)
				break
			}
			first = (first + 1) % len(names)
		}
		rackIndex := offset
		for len(replicas) < rf {
			if rackIndex == first {
				first = -1 // the first rack gave the leader: skip it once
			} else if id, ok := racks[names[rackIndex]].next(epoch); ok {
				replicas = append(replicas, id)
			}
			rackIndex = (rackIndex + 1) % len(names)
		}
		out[epoch] = replicas
		offset = (offset + 1) % len(names)
	}
	return out, nil
}

// CheckAssignment checks a manual replica assignment as Kafka's controller
// does.
func (img *Image) CheckAssignment(replicas []int32) error {
	if len(replicas) == 0 {
		return fmt.Errorf("%w: The manual partition assignment includes an empty replica list.", kerr.InvalidReplicaAssignment)
	}
	for i, id := range replicas {
		if img.Brokers[id] == nil {
			return fmt.Errorf("%w: The manual partition assignment includes broker %d, but no such broker is registered.", kerr.InvalidReplicaAssignment, id)
		}
		if slices.Contains(replicas[:i], id) {
			return fmt.Errorf("%w: The manual partition assignment includes the broker %d more than once.", kerr.InvalidReplicaAssignment, id)
		}
	}
	return nil
}

// newPartition is a new partition's state on replicas: the ISR is its live
// replicas, the leader the first of them.
func (img *Image) newPartition(topic [16]byte, partition int32, replicas []int32) *Partition {
	isr := slices.DeleteFunc(slices.Clone(replicas), func(id int32) bool { return !img.live(id) })
	leader := NoLeader
	if len(isr) > 0 {
		leader = isr[0]
	}
	return &Partition{TopicID: topic, Partition: partition, Replicas: slices.Clone(replicas), ISR: isr, Leader: leader}
}

// CreateTopic is the records that create a topic: with assignment (one
// replica list per partition) as given, or else partitions × rf placed by
// PlaceReplicas, and configs as dynamic topic configs.
func (img *Image) CreateTopic(name string, id [16]byte, partitions, rf int, assignment [][]int32, configs map[string]string, start int) ([]Record, error) {
	if img.Topics[name] != nil {
		return nil, fmt.Errorf("%w: Topic '%s' already exists.", kerr.TopicAlreadyExists, name)
	}
	if assignment == nil {
		if partitions < 1 {
			return nil, fmt.Errorf("%w: Number of partitions was set to an invalid non-positive value.", kerr.InvalidPartitions)
		}
		var err error
		if assignment, err = img.PlaceReplicas(partitions, rf, start); err != nil {
			return nil, err
		}
	}
	for _, rs := range assignment {
		if err := img.CheckAssignment(rs); err != nil {
			return nil, err
		}
	}
	out := []Record{&Topic{Name: name, ID: id}}
	for p, rs := range assignment {
		out = append(out, img.newPartition(id, int32(p), rs))
	}
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		v := configs[k]
		out = append(out, &Config{ResourceType: ConfigTopic, ResourceName: name, Name: k, Value: &v})
	}
	return out, nil
}

// CreatePartitions is the records that raise a topic to total partitions,
// placing the new ones with the first partition's replication factor.
func (img *Image) CreatePartitions(name string, total int, assignment [][]int32, start int) ([]Record, error) {
	t := img.Topics[name]
	if t == nil {
		return nil, fmt.Errorf("%w: This server does not host this topic-partition.", kerr.UnknownTopicOrPartition)
	}
	have := len(t.Partitions)
	if total <= have {
		return nil, fmt.Errorf("%w: Topic currently has %d partitions, which is higher than the requested %d.", kerr.InvalidPartitions, have, total)
	}
	if assignment == nil {
		all, err := img.PlaceReplicas(total, len(t.Partitions[0].Replicas), start)
		if err != nil {
			return nil, err
		}
		assignment = all[have:]
	}
	if len(assignment) != total-have {
		return nil, fmt.Errorf("%w: Attempted to add %d additional partition(s), but only %d assignment(s) were specified.", kerr.InvalidReplicaAssignment, total-have, len(assignment))
	}
	var out []Record
	for i, rs := range assignment {
		if err := img.CheckAssignment(rs); err != nil {
			return nil, err
		}
		out = append(out, img.newPartition(t.ID, int32(have+i), rs))
	}
	return out, nil
}

// DeleteTopic is the record that deletes a topic.
func (img *Image) DeleteTopic(name string) ([]Record, error) {
	t := img.Topics[name]
	if t == nil {
		return nil, fmt.Errorf("%w: This server does not host this topic-partition.", kerr.UnknownTopicOrPartition)
	}
	return []Record{&RemoveTopic{ID: t.ID}}, nil
}

// electLeader picks a partition's leader as KRaft does: the first replica,
// in preferred order, that is in the ISR and live (not excluded); failing
// that with unclean, the first live replica outside the ISR. ok is false
// when none can lead.
func (img *Image) electLeader(p *PartitionState, exclude int32, unclean bool) (leader int32, wasUnclean, ok bool) {
	can := func(id int32) bool { return id != exclude && img.live(id) }
	for _, id := range p.Replicas {
		if slices.Contains(p.ISR, id) && can(id) {
			return id, false, true
		}
	}
	if unclean {
		for _, id := range p.Replicas {
			if can(id) {
				return id, true, true
			}
		}
	}
	return NoLeader, false, false
}

// Unclean says whether a topic may elect a leader from outside its ISR
// (unclean.leader.election.enable).
type Unclean func(topic string) bool

// leaveBroker is the partition changes that take broker id out of every
// ISR and leadership, as fencing and controlled shutdown do: a new leader
// from the rest of the ISR (or an unclean one), and an ISR kept at its last
// member (so that the replica holding the data is known) when id was the
// only one.
func (img *Image) leaveBroker(id int32, unclean Unclean) []Record {
	var out []Record
	for _, name := range slices.Sorted(maps.Keys(img.Topics)) {
		t := img.Topics[name]
		for i := range t.Partitions {
			p := &t.Partitions[i]
			inISR := slices.Contains(p.ISR, id)
			if !inISR && p.Leader != id {
				continue
			}
			c := &PartitionChange{TopicID: t.ID, Partition: int32(i), Leader: NoLeaderChange}
			isr := slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return r == id })
			if p.Leader == id {
				leader, wasUnclean, ok := img.electLeader(p, id, unclean != nil && unclean(name))
				c.Leader = leader
				switch {
				case wasUnclean:
					isr = []int32{leader}
				case !ok:
					isr = p.ISR // the partition is offline: keep who has its data
				}
			}
			if len(isr) == 0 {
				isr = []int32{id}
			}
			if !slices.Equal(isr, p.ISR) {
				c.SetISR(isr)
			}
			if c.Leader != NoLeaderChange || c.isrSet {
				out = append(out, c)
			}
		}
	}
	return out
}

// FenceBroker is the records that fence a broker that stopped heartbeating
// (broker.session.timeout.ms): it leaves every ISR and leadership.
func (img *Image) FenceBroker(id int32, unclean Unclean) ([]Record, error) {
	b := img.Brokers[id]
	if b == nil {
		return nil, fmt.Errorf("%w: broker %d is not registered", kerr.BrokerIDNotRegistered, id)
	}
	t := true
	return append([]Record{&BrokerChange{ID: id, Epoch: b.Epoch, Fenced: &t}}, img.leaveBroker(id, unclean)...), nil
}

// ShutDownBroker is the records of a controlled shutdown: the broker's
// leaderships move and it leaves every ISR before it stops.
func (img *Image) ShutDownBroker(id int32, unclean Unclean) ([]Record, error) {
	b := img.Brokers[id]
	if b == nil {
		return nil, fmt.Errorf("%w: broker %d is not registered", kerr.BrokerIDNotRegistered, id)
	}
	t := true
	return append([]Record{&BrokerChange{ID: id, Epoch: b.Epoch, ShuttingDown: &t}}, img.leaveBroker(id, unclean)...), nil
}

// UnfenceBroker is the records that unfence a broker that caught up with
// the log: it leads again the offline partitions whose ISR it is in.
func (img *Image) UnfenceBroker(id int32) ([]Record, error) {
	b := img.Brokers[id]
	if b == nil {
		return nil, fmt.Errorf("%w: broker %d is not registered", kerr.BrokerIDNotRegistered, id)
	}
	f := false
	out := []Record{&BrokerChange{ID: id, Epoch: b.Epoch, Fenced: &f, ShuttingDown: &f}}
	for _, name := range slices.Sorted(maps.Keys(img.Topics)) {
		t := img.Topics[name]
		for i, p := range t.Partitions {
			if p.Leader == NoLeader && slices.Contains(p.ISR, id) {
				out = append(out, &PartitionChange{TopicID: t.ID, Partition: int32(i), Leader: id})
			}
		}
	}
	return out, nil
}

// UnregisterBroker is the records that remove a broker's registration
// (kafka-cluster.sh unregister, KRaft's ReplicationControlManager
// unregisterBroker): it leaves every ISR and leadership, as when fenced,
// then its registration goes. As in Kafka, a live broker may be
// unregistered too; its next heartbeat is refused and it registers again.
func (img *Image) UnregisterBroker(id int32, unclean Unclean) ([]Record, error) {
	b := img.Brokers[id]
	if b == nil {
		return nil, fmt.Errorf("%w: Broker ID %d is not currently registered", kerr.BrokerIDNotRegistered, id)
	}
	return append(img.leaveBroker(id, unclean), &UnregisterBroker{ID: id, Epoch: b.Epoch}), nil
}
