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

// features is what an ApiVersions answer at version v says.
type features struct {
	supported map[string][2]int16
	finalized map[string]int16
	epoch     int64
}

func apiVersionsFeatures(t *testing.T, b *Broker, v int16) features {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(v)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "kafkit-test", "1"
	resp := sendAs(t, b, "admin", req).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions v%d: %v", v, kerr.ErrorForCode(resp.ErrorCode))
	}
	f := features{supported: map[string][2]int16{}, finalized: map[string]int16{}, epoch: resp.FinalizedFeaturesEpoch}
	for _, s := range resp.SupportedFeatures {
		f.supported[s.Name] = [2]int16{s.MinVersion, s.MaxVersion}
	}
	for _, s := range resp.FinalizedFeatures {
		if s.MinVersionLevel != s.MaxVersionLevel {
			t.Errorf("finalized %s: min %d max %d, want equal (KIP-778)", s.Name, s.MinVersionLevel, s.MaxVersionLevel)
		}
		f.finalized[s.Name] = s.MaxVersionLevel
	}
	return f
}

func updateFeatures(t *testing.T, b *Broker, client string, v int16, validateOnly bool, updates ...kmsg.UpdateFeaturesRequestFeatureUpdate) *kmsg.UpdateFeaturesResponse {
	t.Helper()
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.SetVersion(v)
	req.TimeoutMillis, req.ValidateOnly, req.FeatureUpdates = 5000, validateOnly, updates
	return sendAs(t, b, client, req).(*kmsg.UpdateFeaturesResponse)
}

func featureUpdate(name string, level int16, upgradeType int8) kmsg.UpdateFeaturesRequestFeatureUpdate {
	u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	u.Feature, u.MaxVersionLevel, u.UpgradeType = name, level, upgradeType
	u.AllowDowngrade = upgradeType > 1
	return u
}

// TestFeaturesSingleNode: a single node reports Kafka 4.2's supported
// ranges and the latest release's finalized levels, as ApiVersions v3
// and v4 shape them; UpdateFeatures changes them durably (a restart keeps
// them) with Kafka's refusals, and the levels gate the APIs they enable.
func TestFeaturesSingleNode(t *testing.T) {
	dir := t.TempDir()
	start := func() *Broker {
		return NewTest(t, OnDisk(), WithConfig(func(c *Config) { c.DataDir = dir }), WithAuthorizer("User:admin"),
			WithTestPrincipal(func(id string) string { return "User:" + id }))
	}
	b := start()
	got := apiVersionsFeatures(t, b, 4)
	wantSupported := map[string][2]int16{"metadata.version": {7, 29}, "group.version": {0, 1}, "share.version": {0, 1}, "kraft.version": {0, 1}}
	wantFinalized := map[string]int16{"metadata.version": 29, "group.version": 1, "share.version": 1}
	if !maps.Equal(got.supported, wantSupported) || !maps.Equal(got.finalized, wantFinalized) || got.epoch != 0 {
		t.Fatalf("ApiVersions v4: %+v, want supported %v finalized %v epoch 0", got, wantSupported, wantFinalized)
	}
	// Below v4 no supported feature with minimum 0 (KAFKA-17492); below v3
	// no features at all.
	if got := apiVersionsFeatures(t, b, 3); !maps.Equal(got.supported, map[string][2]int16{"metadata.version": {7, 29}}) || !maps.Equal(got.finalized, wantFinalized) {
		t.Fatalf("ApiVersions v3: %+v", got)
	}
	if got := apiVersionsFeatures(t, b, 2); len(got.supported)+len(got.finalized) != 0 {
		t.Fatalf("ApiVersions v2: %+v", got)
	}

	fails := func(resp *kmsg.UpdateFeaturesResponse, code int16, msg string) {
		t.Helper()
		if resp.ErrorCode != code || resp.ErrorMessage == nil || !strings.Contains(*resp.ErrorMessage, msg) || len(resp.Results) != 0 {
			t.Fatalf("UpdateFeatures: %v %q %+v, want %v containing %q", kerr.ErrorForCode(resp.ErrorCode), derefOr(resp.ErrorMessage), resp.Results, kerr.ErrorForCode(code), msg)
		}
	}
	const failed = "The update failed for all features since the following feature had an error: "
	fails(updateFeatures(t, b, "admin", 1, false, featureUpdate("x.version", 1, 1)), kerr.InvalidUpdateVersion.Code,
		failed+"Invalid update version 1 for feature x.version. Local controller 0 does not support this feature.")
	fails(updateFeatures(t, b, "admin", 1, false, featureUpdate("group.version", 2, 1)), kerr.InvalidUpdateVersion.Code,
		"Invalid update version 2 for feature group.version. Local controller 0 only supports versions 0-1")
	fails(updateFeatures(t, b, "admin", 1, false, featureUpdate("group.version", 0, 1)), kerr.InvalidUpdateVersion.Code,
		"Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.")
	// v0 has no upgrade type: a downgrade needs AllowDowngrade.
	noFlag := featureUpdate("share.version", 0, 1)
	fails(updateFeatures(t, b, "admin", 0, false, noFlag), kerr.InvalidUpdateVersion.Code, "Can't downgrade")
	fails(updateFeatures(t, b, "admin", 1, false, featureUpdate("metadata.version", 22, 2)), kerr.InvalidUpdateVersion.Code,
		"Invalid metadata.version 22. Refusing to perform the requested downgrade because it might delete metadata information.")
	fails(updateFeatures(t, b, "admin", 1, false, featureUpdate("kraft.version", 1, 1)), kerr.InvalidUpdateVersion.Code, "kafkit does not change kraft.version")
	fails(updateFeatures(t, b, "alice", 1, false, featureUpdate("group.version", 0, 2)), kerr.ClusterAuthorizationFailed.Code, "")
	// validateOnly answers as the change would, and changes nothing.
	if r := updateFeatures(t, b, "admin", 1, true, featureUpdate("group.version", 0, 2)); r.ErrorCode != 0 || len(r.Results) != 1 {
		t.Fatalf("validateOnly: %+v", r)
	}
	if got := apiVersionsFeatures(t, b, 4); !maps.Equal(got.finalized, wantFinalized) || got.epoch != 0 {
		t.Fatalf("after refused and validate-only updates: %+v", got)
	}

	// Through a real client: franz-go's kgo, which picks v2 (no
	// per-feature results) and sends it to the controller Metadata names.
	cl := mustClient(t, kgo.SeedBrokers(b.Addr()), kgo.ClientID("admin"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.TimeoutMillis = 5000
	req.FeatureUpdates = []kmsg.UpdateFeaturesRequestFeatureUpdate{featureUpdate("group.version", 0, 2), featureUpdate("share.version", 0, 2), featureUpdate("metadata.version", 24, 2)}
	if r, err := req.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 || r.Version != 2 {
		t.Fatalf("kgo UpdateFeatures: %+v %v", r, err)
	}
	down := map[string]int16{"metadata.version": 24}
	if got := apiVersionsFeatures(t, b, 4); !maps.Equal(got.finalized, down) || got.epoch != 1 {
		t.Fatalf("after the downgrade: %+v, want %v at epoch 1", got, down)
	}
	// KIP-848 and share groups are off: their APIs answer UNSUPPORTED_VERSION.
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberEpoch, hb.RebalanceTimeoutMillis, hb.SubscribedTopicNames = "g", 0, 30000, []string{"t"}
	if r := sendAs(t, b, "admin", hb).(*kmsg.ConsumerGroupHeartbeatResponse); r.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("ConsumerGroupHeartbeat at group.version 0: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	sf := kmsg.NewPtrShareFetchRequest()
	sf.SetVersion(shareFetchVersions.max)
	sf.GroupID, sf.MemberID, sf.ShareSessionEpoch = kmsg.StringPtr("sg"), kmsg.StringPtr("m"), 0
	if r := sendAs(t, b, "admin", sf).(*kmsg.ShareFetchResponse); r.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("ShareFetch at share.version 0: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	// The levels survive a restart.
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer closeCancel()
	if err := b.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	b = start()
	if got := apiVersionsFeatures(t, b, 4); !maps.Equal(got.finalized, down) || got.epoch != 1 {
		t.Fatalf("after a restart: %+v, want %v at epoch 1", got, down)
	}
	// v1 answers a result per feature; the upgrade turns KIP-848 back on.
	r := updateFeatures(t, b, "admin", 1, false, featureUpdate("metadata.version", 29, 1), featureUpdate("group.version", 1, 1))
	if r.ErrorCode != 0 || len(r.Results) != 2 || r.Results[0].Feature != "metadata.version" || r.Results[1].ErrorCode != 0 {
		t.Fatalf("v1 upgrade: %+v", r)
	}
	if r := sendAs(t, b, "admin", hb).(*kmsg.ConsumerGroupHeartbeatResponse); r.ErrorCode == kerr.UnsupportedVersion.Code {
		t.Fatal("ConsumerGroupHeartbeat still UNSUPPORTED_VERSION at group.version 1")
	}
}

func mustClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func derefOr(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
