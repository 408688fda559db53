package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// TestFetchTailAllocs: an incremental Fetch that finds one new batch at the
// end of one of 8 partitions, as a consumer reading records as they arrive
// sends thousands of times a second, allocates only its response once the
// connection's scratch has grown (fetchScratch): the targets, the response's
// topics and partitions, the record bytes (copied below fetchCopyBelow) and
// the long poll's channel and timer are the connection's, and the batch is
// found among the segment's last ones without a header walk.
func TestFetchTailAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	const parts = 8
	br := NewTest(t, OnDisk())
	tp, err := br.topics.create(createSpec{name: "tail", partitions: parts, replicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	bl := recordbatch.NewBuilder(recordbatch.Options{}, 0)
	bl.Append(time.Now().UnixMilli(), nil, make([]byte, 100), nil)
	batch, err := bl.Finish(recordbatch.NoProducer())
	if err != nil {
		t.Fatal(err)
	}
	fetchReq := func(epoch int32, offsets map[int]int64) *kmsg.FetchRequest {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(fetchVersions.max)
		req.ReplicaID, req.MaxBytes, req.MinBytes, req.MaxWaitMillis = -1, 50<<20, 1, 500
		req.SessionEpoch = epoch
		rt := kmsg.NewFetchRequestTopic()
		rt.TopicID = tp.id
		for p, off := range offsets {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.FetchOffset = int32(p), 1<<20, -1, off
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		return req
	}
	var scratch []byte
	rc := &reqCtx{ctx: context.Background(), version: fetchVersions.max, scratch: &scratch, fetch: new(fetchScratch), zeroCopy: true}
	all := map[int]int64{}
	for p := range parts {
		all[p] = 0
	}
	resp, err := br.handleFetch(rc, fetchReq(0, all))
	if err != nil {
		t.Fatal(err)
	}
	session := resp.(*kmsg.FetchResponse).SessionID
	epoch := int32(1)
	p := 0
	fetchOne := func() {
		log := tp.partitions[p].log
		end := log.EndOffset()
		if _, err := log.Append(batch, time.Now(), 0); err != nil {
			t.Fatal(err)
		}
		// The previous partition's fetch offset moves past its batch.
		prev := (p + parts - 1) % parts
		req := fetchReq(epoch, map[int]int64{prev: tp.partitions[prev].log.EndOffset(), p: end})
		req.SessionID = session
		epoch++
		resp, err := br.handleFetch(rc, req)
		if err != nil {
			t.Fatal(err)
		}
		fr := resp.(*kmsg.FetchResponse)
		if fr.ErrorCode != 0 || len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 || len(fr.Topics[0].Partitions[0].RecordBatches) != len(batch) {
			t.Fatalf("partition %d at %d: %+v", p, end, fr)
		}
		p = (p + 1) % parts
	}
	for range 2 * parts {
		fetchOne() // grows the scratch
	}
	// The request and its partition (built here), the response (its
	// struct), and the append's own.
	const want = 5
	if n := testing.AllocsPerRun(100, fetchOne); n > want {
		t.Errorf("%.1f allocations per Fetch at the end of the log, want at most %d", n, want)
	}
}
