package broker

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// awaitFinalized waits (up to 15 s) until node id's ApiVersions reports
// want as its finalized features, and returns its epoch.
func awaitFinalized(t *testing.T, c *TestCluster, id int32, want map[string]int16) int64 {
	t.Helper()
	var got features
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = apiVersionsFeatures(t, c.Broker(id), 4); maps.Equal(got.finalized, want) && got.epoch > 0 {
			return got.epoch
		}
	}
	t.Fatalf("node %d: finalized %v at epoch %d, want %v", id, got.finalized, got.epoch, want)
	return 0
}

// TestFeaturesCluster: the finalized levels live in the metadata log. A
// broker forwards UpdateFeatures to the active controller and answers
// once it has the change; every node reports the levels, with its image's
// offset as the epoch; they survive the controller's failover and reach
// a node that was down; Kafka's refusals come back through a forwarding
// broker too.
func TestFeaturesCluster(t *testing.T) {
	c := NewTestCluster(t, 3)
	c.AwaitLive(3)
	defaults := map[string]int16{"metadata.version": 29, "group.version": 1, "share.version": 1}
	for id := int32(1); id <= 3; id++ {
		awaitFinalized(t, c, id, defaults)
	}
	ctl := c.Controller()
	other := ctl%3 + 1
	r := updateFeatures(t, c.Broker(other), "admin", 1, false, featureUpdate("group.version", 0, 2))
	if r.ErrorCode != 0 || len(r.Results) != 1 || r.Results[0].Feature != "group.version" || r.Results[0].ErrorCode != 0 {
		t.Fatalf("forwarded downgrade: %+v", r)
	}
	down := map[string]int16{"metadata.version": 29, "share.version": 1}
	// The forwarding broker answered once it had the change.
	if got := apiVersionsFeatures(t, c.Broker(other), 4); !maps.Equal(got.finalized, down) {
		t.Fatalf("node %d right after its answer: %v", other, got.finalized)
	}
	r = updateFeatures(t, c.Broker(other), "admin", 2, false, featureUpdate("x.version", 1, 1))
	if r.ErrorCode != kerr.InvalidUpdateVersion.Code || r.ErrorMessage == nil ||
		!strings.HasSuffix(*r.ErrorMessage, "Invalid update version 1 for feature x.version. Local controller "+itoa(int64(ctl))+" does not support this feature.") {
		t.Fatalf("forwarded unknown feature: %v %q", kerr.ErrorForCode(r.ErrorCode), derefOr(r.ErrorMessage))
	}
	var before int64
	for id := int32(1); id <= 3; id++ {
		before = max(before, awaitFinalized(t, c, id, down))
	}

	c.Kill(ctl)
	next := c.Controller()
	if next == ctl {
		t.Fatalf("controller %d still active after its kill", ctl)
	}
	for id := int32(1); id <= 3; id++ {
		if id != ctl {
			awaitFinalized(t, c, id, down)
		}
	}
	// The new controller decides from the log: upgrading through a kgo
	// client, which sends it to the controller Metadata names.
	cl := mustClient(t, kgo.SeedBrokers(c.Broker(next).Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.TimeoutMillis = 5000
	req.FeatureUpdates = []kmsg.UpdateFeaturesRequestFeatureUpdate{featureUpdate("group.version", 1, 1)}
	if resp, err := req.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("upgrade after the failover: %+v %v", resp, err)
	}
	c.Restart(ctl)
	for id := int32(1); id <= 3; id++ {
		if epoch := awaitFinalized(t, c, id, defaults); epoch <= before {
			t.Errorf("node %d: epoch %d after the upgrade, %d before", id, epoch, before)
		}
	}
}

// With a controller-only node: a broker forwards UpdateFeatures to it
// over its CONTROLLER listener, which reports the levels in its
// ApiVersions too, as Kafka's controllers do.
func TestFeaturesControllerOnly(t *testing.T) {
	c := NewTestClusterSplit(t, 1, 1)
	r := updateFeatures(t, c.Broker(2), "admin", 1, false, featureUpdate("share.version", 0, 2), featureUpdate("metadata.version", 28, 2))
	if r.ErrorCode != 0 || len(r.Results) != 2 {
		t.Fatalf("forwarded downgrade: %v %q %+v", kerr.ErrorForCode(r.ErrorCode), derefOr(r.ErrorMessage), r.Results)
	}
	want := map[string]int16{"metadata.version": 28, "group.version": 1}
	awaitFinalized(t, c, 1, want)
	awaitFinalized(t, c, 2, want)
}
