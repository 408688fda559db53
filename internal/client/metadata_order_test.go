package client

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestInvalidationIsNotAnsweredByAnOlderRequest: a Metadata request that was
// on the wire when a caller invalidated a topic (after changing it) must not
// answer that caller, nor leave its answer in the cache as fresh.
func TestInvalidationIsNotAnsweredByAnOlderRequest(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "moving"))
	cl := newClient(t, c, nil)
	ctx := testCtx(t)
	md, err := cl.Metadata(ctx, "moving")
	if err != nil {
		t.Fatal(err)
	}
	old := md.Topics["moving"].Partitions[0]
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("moving")}}
	kresp, err := cl.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	before := kresp.(*kmsg.MetadataResponse)

	// The next Metadata request is held, then answered with the state from
	// before the move.
	var armed atomic.Bool
	armed.Store(true)
	held, release := make(chan struct{}), make(chan struct{})
	c.ControlKey(int16(kmsg.Metadata), func(r kmsg.Request) (kmsg.Response, error, bool) {
		if !armed.CompareAndSwap(true, false) {
			return nil, nil, false
		}
		close(held)
		c.SleepControl(func() { <-release })
		stale := *before
		stale.Version = r.GetVersion()
		return &stale, nil, true
	})
	cl.InvalidateMetadata("moving") // the background refresh goes out and is held
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("no Metadata request after InvalidateMetadata")
	}
	target := (old.Leader + 1) % 3
	if err := c.MoveTopicPartition("moving", 0, target); err != nil {
		t.Fatal(err)
	}
	cl.InvalidateMetadata("moving")
	got := make(chan PartitionMeta, 1)
	go func() {
		md, err := cl.Metadata(ctx, "moving")
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- md.Topics["moving"].Partitions[0]
	}()
	time.Sleep(20 * time.Millisecond) // let the caller find the held request in flight
	close(release)
	p := <-got
	if p.Leader != target {
		t.Fatalf("Metadata after the move answered leader %d (epoch %d), want %d: an answer older than the invalidation", p.Leader, p.LeaderEpoch, target)
	}
}
