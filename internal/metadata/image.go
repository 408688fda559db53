package metadata

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Broker is a registered broker as the image has it.
type Broker struct {
	RegisterBroker
	ShuttingDown bool
}

// PartitionState is a partition as the image has it.
type PartitionState struct {
	Replicas, ISR, Adding, Removing []int32
	Leader                          int32
	LeaderEpoch, PartitionEpoch     int32
}

// TopicImage is a topic with its partitions, indexed by partition number.
type TopicImage struct {
	Name       string
	ID         [16]byte
	Partitions []PartitionState
}

// ConfigResource names what a dynamic config belongs to.
type ConfigResource struct {
	Type int8 // kmsg.ConfigResourceType
	Name string
}

// Image is the cluster's metadata at one offset of the log. It is changed
// only by Apply; whoever owns an Image owns it alone (the FSM hands out
// copies, see Clone).
type Image struct {
	// Offset is the log offset (Raft index) of the last batch applied.
	Offset         uint64
	Brokers        map[int32]*Broker
	Topics         map[string]*TopicImage
	TopicsByID     map[[16]byte]*TopicImage
	Configs        map[ConfigResource]map[string]string
	NextProducerID int64
	Security       SecurityImage // records_security.go
	// Features are the finalized feature levels of FeatureLevel records
	// (features.go; FinalizedFeatures reads them).
	Features map[string]int16
}

// NewImage is the image of an empty cluster.
func NewImage() *Image {
	return &Image{
		Brokers:    map[int32]*Broker{},
		Topics:     map[string]*TopicImage{},
		TopicsByID: map[[16]byte]*TopicImage{},
		Configs:    map[ConfigResource]map[string]string{},
		Security:   newSecurityImage(),
		Features:   map[string]int16{},
	}
}

// Clone is a deep copy, for readers on other goroutines.
func (img *Image) Clone() *Image {
	out := NewImage()
	out.Offset, out.NextProducerID = img.Offset, img.NextProducerID
	for id, b := range img.Brokers {
		c := *b
		c.Listeners = slices.Clone(b.Listeners)
		out.Brokers[id] = &c
	}
	for name, t := range img.Topics {
		c := &TopicImage{Name: t.Name, ID: t.ID, Partitions: make([]PartitionState, len(t.Partitions))}
		for i, p := range t.Partitions {
			c.Partitions[i] = p.clone()
		}
		out.Topics[name] = c
		out.TopicsByID[t.ID] = c
	}
	for r, kv := range img.Configs {
		out.Configs[r] = maps.Clone(kv)
	}
	out.Security = img.Security.clone()
	out.Features = maps.Clone(img.Features)
	return out
}

func (p PartitionState) clone() PartitionState {
	p.Replicas, p.ISR = slices.Clone(p.Replicas), slices.Clone(p.ISR)
	p.Adding, p.Removing = slices.Clone(p.Adding), slices.Clone(p.Removing)
	return p
}

// Partition returns a partition's state, or nil.
func (img *Image) Partition(topicID [16]byte, partition int32) *PartitionState {
	t := img.TopicsByID[topicID]
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return nil
	}
	return &t.Partitions[partition]
}

// Apply applies a batch's records in order at log offset offset. A record
// that does not fit the image (a partition of an unknown topic, a change of
// an unknown broker) stops the batch there with an error: every node
// applies the same log to the same image, so every node stops at the same
// record and the images stay identical.
func (img *Image) Apply(offset uint64, records []Record) error {
	img.Offset = offset
	for i, r := range records {
		if err := img.apply(r); err != nil {
			return fmt.Errorf("metadata: record %d (type %d) of the batch at offset %d: %w", i, r.Type(), offset, err)
		}
	}
	return nil
}

func (img *Image) apply(r Record) error {
	switch x := r.(type) {
	case *RegisterBroker:
		c := *x
		c.Listeners = slices.Clone(x.Listeners)
		img.Brokers[x.ID] = &Broker{RegisterBroker: c}
	case *UnregisterBroker:
		b := img.Brokers[x.ID]
		if b == nil || b.Epoch != x.Epoch {
			return fmt.Errorf("no broker %d at epoch %d", x.ID, x.Epoch)
		}
		delete(img.Brokers, x.ID)
	case *BrokerChange:
		b := img.Brokers[x.ID]
		if b == nil || b.Epoch != x.Epoch {
			return fmt.Errorf("no broker %d at epoch %d", x.ID, x.Epoch)
		}
		if x.Fenced != nil {
			b.Fenced = *x.Fenced
		}
		if x.ShuttingDown != nil {
			b.ShuttingDown = *x.ShuttingDown
		}
	case *Topic:
		if img.Topics[x.Name] != nil || img.TopicsByID[x.ID] != nil {
			return fmt.Errorf("topic %q or its id exists", x.Name)
		}
		t := &TopicImage{Name: x.Name, ID: x.ID}
		img.Topics[x.Name], img.TopicsByID[x.ID] = t, t
	case *Partition:
		t := img.TopicsByID[x.TopicID]
		switch {
		case t == nil:
			return fmt.Errorf("partition %d of an unknown topic", x.Partition)
		case int(x.Partition) > len(t.Partitions) || x.Partition < 0:
			return fmt.Errorf("partition %d of %s after %d partitions", x.Partition, t.Name, len(t.Partitions))
		}
		p := PartitionState{Replicas: x.Replicas, ISR: x.ISR, Adding: x.Adding, Removing: x.Removing,
			Leader: x.Leader, LeaderEpoch: x.LeaderEpoch, PartitionEpoch: x.PartitionEpoch}.clone()
		if int(x.Partition) == len(t.Partitions) {
			t.Partitions = append(t.Partitions, p)
		} else {
			t.Partitions[x.Partition] = p
		}
	case *PartitionChange:
		p := img.Partition(x.TopicID, x.Partition)
		if p == nil {
			return fmt.Errorf("change of unknown partition %d", x.Partition)
		}
		if x.Leader != NoLeaderChange {
			p.Leader = x.Leader
			p.LeaderEpoch++
		}
		if x.isrSet {
			p.ISR = slices.Clone(x.ISR)
		}
		if x.replSet {
			p.Replicas = slices.Clone(x.Replicas)
		}
		if x.addSet {
			p.Adding = slices.Clone(x.Adding)
		}
		if x.removSet {
			p.Removing = slices.Clone(x.Removing)
		}
		p.PartitionEpoch++
	case *RemoveTopic:
		t := img.TopicsByID[x.ID]
		if t == nil {
			return fmt.Errorf("removal of an unknown topic")
		}
		delete(img.Topics, t.Name)
		delete(img.TopicsByID, x.ID)
		delete(img.Configs, ConfigResource{Type: ConfigTopic, Name: t.Name})
	case *Config:
		res := ConfigResource{Type: x.ResourceType, Name: x.ResourceName}
		if x.Value == nil {
			delete(img.Configs[res], x.Name)
			if len(img.Configs[res]) == 0 {
				delete(img.Configs, res)
			}
			break
		}
		if img.Configs[res] == nil {
			img.Configs[res] = map[string]string{}
		}
		img.Configs[res][x.Name] = *x.Value
	case *FeatureLevel:
		return img.applyFeatureLevel(x)
	case *ProducerIDs:
		if x.NextProducerID < img.NextProducerID {
			return fmt.Errorf("producer id block %d below %d", x.NextProducerID, img.NextProducerID)
		}
		img.NextProducerID = x.NextProducerID
	default:
		if handled, err := img.applySecurity(r); handled {
			return err
		}
		return fmt.Errorf("%w: %T", ErrUnknownRecord, r)
	}
	return nil
}

// Config resource types, as kmsg.ConfigResourceType numbers them.
const (
	ConfigTopic  int8 = 2
	ConfigBroker int8 = 4
)

// Records are the records that rebuild the image from empty: a snapshot.
// They are in an order Apply accepts: the feature levels, brokers, topics each followed by its
// partitions, configs, the producer id block, the security records.
func (img *Image) Records() []Record {
	out := FeatureRecords(img.Features)
	for _, id := range slices.Sorted(maps.Keys(img.Brokers)) {
		b := img.Brokers[id]
		reg := b.RegisterBroker
		reg.Listeners = slices.Clone(b.Listeners)
		out = append(out, &reg)
		if b.ShuttingDown {
			t := true
			out = append(out, &BrokerChange{ID: id, Epoch: b.Epoch, ShuttingDown: &t})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(img.Topics)) {
		t := img.Topics[name]
		out = append(out, &Topic{Name: t.Name, ID: t.ID})
		for i, p := range t.Partitions {
			p = p.clone()
			out = append(out, &Partition{TopicID: t.ID, Partition: int32(i), Replicas: p.Replicas, ISR: p.ISR,
				Adding: p.Adding, Removing: p.Removing, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch})
		}
	}
	for _, res := range slices.SortedFunc(maps.Keys(img.Configs), func(a, b ConfigResource) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), strings.Compare(a.Name, b.Name))
	}) {
		for _, k := range slices.Sorted(maps.Keys(img.Configs[res])) {
			v := img.Configs[res][k]
			out = append(out, &Config{ResourceType: res.Type, ResourceName: res.Name, Name: k, Value: &v})
		}
	}
	if img.NextProducerID > 0 {
		out = append(out, &ProducerIDs{BrokerID: -1, NextProducerID: img.NextProducerID})
	}
	return append(out, img.Security.records()...)
}
