package consumer

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupMetadata: before joining, a member reports generation -1 and no
// member id; once in the group, the coordinator's generation and member id.
func TestGroupMetadata(t *testing.T) {
	cl := newCluster(t, kfake.SeedTopics(1, "gm"))
	ctx := testCtx(t, 30*time.Second)
	c, err := New(ctx, Config{BootstrapServers: cl.ListenAddrs(), GroupID: "gm-group", AutoOffsetReset: OffsetResetEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if md := c.GroupMetadata(); md.GroupID != "gm-group" || md.GenerationID != -1 || md.MemberID != "" {
		t.Fatalf("before joining: %+v", md)
	}
	if err := c.Subscribe("gm"); err != nil {
		t.Fatal(err)
	}
	produce(t, cl, &kgo.Record{Topic: "gm", Partition: 0, Value: []byte("v")})
	if recs, err := c.Poll(ctx); err != nil || len(recs) == 0 {
		t.Fatalf("poll: %v %d", err, len(recs))
	}
	if md := c.GroupMetadata(); md.GenerationID < 1 || md.MemberID == "" {
		t.Fatalf("in the group: %+v", md)
	}
	plain, err := New(ctx, Config{BootstrapServers: cl.ListenAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(context.Background())
	if md := plain.GroupMetadata(); md.GroupID != "" || md.GenerationID != -1 {
		t.Fatalf("without a group: %+v", md)
	}
}
