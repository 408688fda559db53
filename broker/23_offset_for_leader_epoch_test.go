package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

func TestOffsetForLeaderEpoch(t *testing.T) {
	b := NewTest(t)
	tp, err := b.topics.create(createSpec{name: "t", partitions: 1, replicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	bl := recordbatch.NewBuilder(recordbatch.Options{}, 0)
	for range 3 {
		bl.Append(time.Now().UnixMilli(), nil, []byte("v"), nil)
	}
	batch, err := bl.Finish(recordbatch.NoProducer())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.partitions[0].log.Append(batch, time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	c := dial(t, b)
	for _, tc := range []struct {
		current, epoch int32
		code           int16
		wantEpoch      int32
		wantEnd        int64
	}{
		{current: 0, epoch: 0, wantEpoch: 0, wantEnd: 3},
		{current: -1, epoch: 5, wantEpoch: 0, wantEnd: 3},
		{current: 0, epoch: -1, wantEpoch: -1, wantEnd: -1},
		{current: 7, epoch: 0, code: kerr.UnknownLeaderEpoch.Code, wantEpoch: -1, wantEnd: -1},
	} {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.SetVersion(4)
		req.ReplicaID = -1
		req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: tc.current, LeaderEpoch: tc.epoch}}}}
		p := c.roundTrip(req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
		if p.ErrorCode != tc.code || p.LeaderEpoch != tc.wantEpoch || p.EndOffset != tc.wantEnd {
			t.Errorf("%+v: got code %d epoch %d end %d", tc, p.ErrorCode, p.LeaderEpoch, p.EndOffset)
		}
	}
}
