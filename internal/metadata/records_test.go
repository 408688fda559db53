package metadata

import (
	"errors"
	"reflect"
	"testing"
)

func str(s string) *string { return &s }
func boolp(b bool) *bool   { return &b }

// sampleRecords has one record of every type, every field set.
func sampleRecords() []Record {
	id := [16]byte{1, 2, 3}
	change := &PartitionChange{TopicID: id, Partition: 1, Leader: 2}
	change.SetISR([]int32{2, 3}).SetAdding(nil)
	return []Record{
		&RegisterBroker{ID: 1, Incarnation: [16]byte{9}, Epoch: 42, Rack: "r1", Fenced: true,
			Listeners: []Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}, {Name: "SASL_SSL", Host: "h", Port: 9095, SecurityProtocol: 3}}},
		&BrokerChange{ID: 1, Epoch: 42, Fenced: boolp(false), ShuttingDown: nil},
		&Topic{Name: "orders", ID: id},
		&Partition{TopicID: id, Partition: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}, Adding: []int32{}, Removing: []int32{3},
			Leader: 1, LeaderEpoch: 4, PartitionEpoch: 7},
		change,
		&Config{ResourceType: ConfigTopic, ResourceName: "orders", Name: "retention.ms", Value: str("1000")},
		&Config{ResourceType: ConfigBroker, ResourceName: "", Name: "log.retention.ms", Value: nil},
		&ProducerIDs{BrokerID: 1, BrokerEpoch: 42, NextProducerID: 5000},
		&RemoveTopic{ID: id},
		&UnregisterBroker{ID: 1, Epoch: 42},
		&FeatureLevel{Name: "group.version", Level: 1},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	in := sampleRecords()
	out, err := DecodeBatch(EncodeBatch(in...))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %#v\nwant %#v", out, in)
	}
	// An unchanged list and an emptied one differ on the wire.
	c := out[4].(*PartitionChange)
	if !c.isrSet || !c.addSet || c.replSet || c.removSet || len(c.Adding) != 0 {
		t.Errorf("change's set lists: %+v", c)
	}
}

func TestDecodeBatchErrors(t *testing.T) {
	good := EncodeBatch(sampleRecords()...)
	for name, b := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte{0}, good[1:]...),
		"truncated": good[:len(good)-3],
		"trailing":  append(append([]byte{}, good...), 0),
	} {
		if _, err := DecodeBatch(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	// A record of a newer version (or type) than this build reads stops
	// the batch with the records before it.
	b := EncodeBatch(&Topic{Name: "a"}, &Topic{Name: "b"})
	i := len(EncodeBatch(&Topic{Name: "a"})) // the second record's header starts here
	b[i+1] = 1                               // its version
	recs, err := DecodeBatch(b)
	if !errors.Is(err, ErrUnknownRecord) || len(recs) != 1 {
		t.Errorf("newer version: %d records, %v", len(recs), err)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(EncodeBatch(sampleRecords()...))
	f.Add([]byte{batchMagic, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := DecodeBatch(b)
		if err != nil {
			return
		}
		// What decodes encodes to bytes that decode to the same records.
		again, err := DecodeBatch(EncodeBatch(recs...))
		if err != nil || !reflect.DeepEqual(again, recs) {
			t.Fatalf("re-encoded records differ: %v\n%#v\n%#v", err, again, recs)
		}
	})
}
