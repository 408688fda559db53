package client

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/kafkit/kafkit"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestNewOffsetFetchFillsBothLayouts(t *testing.T) {
	id := [16]byte{1}
	req := NewOffsetFetch("g", []kafkit.TopicPartition{{Topic: "a", Partition: 1}, {Topic: "a", Partition: 0}}, map[string][16]byte{"a": id})
	if req.Group != "g" || len(req.Topics) != 1 || !slices.Equal(req.Topics[0].Partitions, []int32{1, 0}) {
		t.Errorf("v0-v7 layout: %+v", req)
	}
	if len(req.Groups) != 1 || req.Groups[0].Group != "g" || len(req.Groups[0].Topics) != 1 ||
		req.Groups[0].Topics[0].TopicID != id || !slices.Equal(req.Groups[0].Topics[0].Partitions, []int32{1, 0}) {
		t.Errorf("v8+ layout: %+v", req.Groups)
	}
	if all := NewOffsetFetch("g", nil, nil); all.Topics != nil || all.Groups[0].Topics != nil {
		t.Error("no partitions must ask for every committed offset (null topics)")
	}
}

func TestReadOffsetFetch(t *testing.T) {
	id := [16]byte{7}
	type got map[kafkit.TopicPartition]int64
	read := func(resp *kmsg.OffsetFetchResponse) (got, error) {
		out := got{}
		err := ReadOffsetFetch(resp, map[[16]byte]string{id: "by-id"},
			func(code int16) error { return kerr.ErrorForCode(code) },
			func(tp kafkit.TopicPartition, offset int64, _ int32, code int16) error {
				if err := kerr.ErrorForCode(code); err != nil {
					return err
				}
				out[tp] = offset
				return nil
			})
		return out, err
	}

	v7 := kmsg.NewPtrOffsetFetchResponse()
	v7.Version = 7
	rt := kmsg.NewOffsetFetchResponseTopic()
	rt.Topic = "a"
	rt.Partitions = []kmsg.OffsetFetchResponseTopicPartition{{Partition: 0, Offset: 5}, {Partition: 1, Offset: -1}}
	v7.Topics = []kmsg.OffsetFetchResponseTopic{rt}
	if m, err := read(v7); err != nil || !maps.Equal(m, got{{Topic: "a", Partition: 0}: 5, {Topic: "a", Partition: 1}: -1}) {
		t.Errorf("v7: %v %v", m, err)
	}
	v7.ErrorCode = kerr.CoordinatorLoadInProgress.Code
	if _, err := read(v7); !errors.Is(err, kerr.CoordinatorLoadInProgress) {
		t.Errorf("v7 group error: %v", err)
	}

	v10 := kmsg.NewPtrOffsetFetchResponse()
	v10.Version = 10
	g := kmsg.NewOffsetFetchResponseGroup()
	gt := kmsg.NewOffsetFetchResponseGroupTopic()
	gt.TopicID = id
	gt.Partitions = []kmsg.OffsetFetchResponseGroupTopicPartition{{Partition: 2, Offset: 9}}
	g.Topics = []kmsg.OffsetFetchResponseGroupTopic{gt}
	v10.Groups = []kmsg.OffsetFetchResponseGroup{g}
	if m, err := read(v10); err != nil || !maps.Equal(m, got{{Topic: "by-id", Partition: 2}: 9}) {
		t.Errorf("v10: %v %v", m, err)
	}
	v10.Groups[0].Topics[0].Partitions[0].ErrorCode = kerr.UnstableOffsetCommit.Code
	if _, err := read(v10); !errors.Is(err, kerr.UnstableOffsetCommit) {
		t.Errorf("v10 partition error: %v", err)
	}
	v10.Groups[0].ErrorCode = kerr.GroupIDNotFound.Code
	if m, err := read(v10); err != nil || len(m) != 0 {
		t.Errorf("GROUP_ID_NOT_FOUND must read as no commits: %v %v", m, err)
	}
	v10.Groups = append(v10.Groups, g)
	if _, err := read(v10); err == nil {
		t.Error("two groups in the response must be an error")
	}
}
