package integration

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/broker"
)

// Feature versioning through two clients over TCP: sarama's ClusterAdmin
// (UpdateFeatures v0, AllowDowngrade) and ApiVersions v4, and kafkit's
// admin (DescribeFeatures, UpdateFeatures at the newest version), each
// seeing the other's change.
func TestFeaturesSaramaAndAdmin(t *testing.T) {
	b := broker.NewTest(t)
	cfg := saramaConfig()
	cfg.Version = sarama.V4_0_0_0
	sa, err := sarama.NewClusterAdmin([]string{b.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := admin.New(ctx, admin.Config{BootstrapServers: []string{b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()

	if _, err := sa.UpdateFeatures([]sarama.FeatureUpdate{{Feature: "sarama.unsupported.feature", MaxVersionLevel: 1}}); !errors.Is(err, sarama.ErrInvalidUpdateVersion) ||
		!strings.Contains(err.Error(), "Invalid update version 1 for feature sarama.unsupported.feature. Local controller 0 does not support this feature.") {
		t.Fatalf("sarama, unknown feature: %v", err)
	}
	if _, err := sa.UpdateFeatures([]sarama.FeatureUpdate{{Feature: "share.version", MaxVersionLevel: 0}}); !errors.Is(err, sarama.ErrInvalidUpdateVersion) ||
		!strings.Contains(err.Error(), "Can't downgrade the version of this feature without setting the upgrade type") {
		t.Fatalf("sarama, downgrade without AllowDowngrade: %v", err)
	}
	res, err := sa.UpdateFeatures([]sarama.FeatureUpdate{{Feature: "share.version", MaxVersionLevel: 0, AllowDowngrade: true}})
	if err != nil || len(res) != 1 || res[0].Feature != "share.version" || !errors.Is(res[0].ErrorCode, sarama.ErrNoError) {
		t.Fatalf("sarama downgrade: %+v %v", res, err)
	}

	controller, err := sa.Controller()
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := controller.ApiVersions(&sarama.ApiVersionsRequest{Version: 4, ClientSoftwareName: "sarama", ClientSoftwareVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	supported, finalized := map[string]int16{}, map[string]int16{}
	for _, f := range rsp.SupportedFeatures {
		supported[f.Name] = f.MaxVersion
	}
	for _, f := range rsp.FinalizedFeatures {
		finalized[f.Name] = f.MaxVersionLevel
	}
	if supported["share.version"] != 1 || supported["metadata.version"] != 29 || finalized["share.version"] != 0 || finalized["group.version"] != 1 || rsp.FinalizedFeaturesEpoch != 1 {
		t.Fatalf("sarama ApiVersions v4: supported %v finalized %v epoch %d", supported, finalized, rsp.FinalizedFeaturesEpoch)
	}

	fm, err := adm.DescribeFeatures(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fm.Finalized["share.version"]; ok || fm.Finalized["metadata.version"] != (admin.FeatureRange{Min: 29, Max: 29}) ||
		fm.Supported["group.version"] != (admin.FeatureRange{Min: 0, Max: 1}) || fm.FinalizedEpoch != 1 {
		t.Fatalf("admin DescribeFeatures: %+v", fm)
	}
	err = adm.UpdateFeatures(ctx, map[string]admin.FeatureUpdate{"metadata.version": {Level: 22, UpgradeType: admin.UnsafeDowngrade}}, false)
	var ae *admin.Error
	if !errors.As(err, &ae) || ae.Code != kerr.InvalidUpdateVersion || !strings.HasSuffix(ae.Message, "Invalid metadata.version 22. Unsafe metadata downgrade is not supported in this version.") {
		t.Fatalf("admin unsafe downgrade: %v", err)
	}
	if err := adm.UpdateFeatures(ctx, map[string]admin.FeatureUpdate{"share.version": {Level: 1}}, true); err != nil {
		t.Fatalf("admin validate-only upgrade: %v", err)
	}
	if fm, err := adm.DescribeFeatures(ctx); err != nil || fm.FinalizedEpoch != 1 {
		t.Fatalf("after validateOnly: %+v %v", fm, err)
	}
	if err := adm.UpdateFeatures(ctx, map[string]admin.FeatureUpdate{"share.version": {Level: 1}}, false); err != nil {
		t.Fatalf("admin upgrade: %v", err)
	}
	rsp, err = controller.ApiVersions(&sarama.ApiVersionsRequest{Version: 4, ClientSoftwareName: "sarama", ClientSoftwareVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rsp.FinalizedFeatures {
		if f.Name == "share.version" && f.MaxVersionLevel == 1 && rsp.FinalizedFeaturesEpoch == 2 {
			return
		}
	}
	t.Fatalf("sarama ApiVersions after the admin's upgrade: %+v epoch %d", rsp.FinalizedFeatures, rsp.FinalizedFeaturesEpoch)
}
