package admin

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FeatureRange is a range of feature levels.
type FeatureRange struct{ Min, Max int16 }

// FeatureMetadata is Java's Admin.describeFeatures: the features one
// broker supports and the cluster's finalized levels (KIP-584), as that
// broker's ApiVersions reports them.
type FeatureMetadata struct {
	// Finalized are the cluster's finalized levels (Min equals Max since
	// KIP-778); a feature at level 0 is absent.
	Finalized map[string]FeatureRange
	// FinalizedEpoch orders the finalized levels (the metadata log's
	// offset on KRaft); -1 when the broker does not know them.
	FinalizedEpoch int64
	// Supported are the levels the answering broker's software supports.
	Supported map[string]FeatureRange
}

// DescribeFeatures asks a broker for the supported and finalized features
// (ApiVersions v3+).
func (c *Client) DescribeFeatures(ctx context.Context) (FeatureMetadata, error) {
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "kafkit", "0"
	resp, err := ask(ctx, c, c.cl.Request, "describe features", req, func(r *kmsg.ApiVersionsResponse) (int16, *string) { return r.ErrorCode, nil })
	if err != nil {
		return FeatureMetadata{}, err
	}
	out := FeatureMetadata{Finalized: map[string]FeatureRange{}, Supported: map[string]FeatureRange{}, FinalizedEpoch: resp.FinalizedFeaturesEpoch}
	for _, f := range resp.SupportedFeatures {
		out.Supported[f.Name] = FeatureRange{f.MinVersion, f.MaxVersion}
	}
	for _, f := range resp.FinalizedFeatures {
		out.Finalized[f.Name] = FeatureRange{f.MinVersionLevel, f.MaxVersionLevel}
	}
	return out, nil
}

// UpgradeType says how a feature level may change (Java's
// FeatureUpdate.UpgradeType).
type UpgradeType int8

const (
	// Upgrade allows only a higher level (or the same).
	Upgrade UpgradeType = 1
	// SafeDowngrade allows a lower level that loses no metadata.
	SafeDowngrade UpgradeType = 2
	// UnsafeDowngrade allows a lower level that may lose metadata.
	UnsafeDowngrade UpgradeType = 3
)

// FeatureUpdate is a feature's new finalized level; level 0 removes the
// feature (a downgrade).
type FeatureUpdate struct {
	Level       int16
	UpgradeType UpgradeType
}

// UpdateFeatures changes finalized feature levels (Java's
// Admin.updateFeatures). The controller applies every update or none: the
// error names the first that failed (INVALID_UPDATE_VERSION with Kafka's
// message). validateOnly checks the updates without applying them.
func (c *Client) UpdateFeatures(ctx context.Context, updates map[string]FeatureUpdate, validateOnly bool) error {
	if len(updates) == 0 {
		return fmt.Errorf("update features: no feature to update")
	}
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.TimeoutMillis = int32(c.cfg.RequestTimeout.Milliseconds())
	req.ValidateOnly = validateOnly
	for name, u := range updates {
		if strings.TrimSpace(name) == "" {
			return fmt.Errorf("update features: a feature name is empty")
		}
		fu := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		fu.Feature, fu.MaxVersionLevel, fu.UpgradeType = name, u.Level, int8(u.UpgradeType)
		if fu.UpgradeType == 0 {
			fu.UpgradeType = int8(Upgrade)
		}
		fu.AllowDowngrade = fu.UpgradeType != int8(Upgrade) // v0
		req.FeatureUpdates = append(req.FeatureUpdates, fu)
	}
	_, err := askController(ctx, c, "update features", req, func(r *kmsg.UpdateFeaturesResponse) (int16, *string) {
		if r.ErrorCode != 0 {
			return r.ErrorCode, r.ErrorMessage
		}
		for _, res := range r.Results { // v0-1
			if res.ErrorCode != 0 {
				return res.ErrorCode, res.ErrorMessage
			}
		}
		if r.Version <= 1 && len(r.Results) != len(req.FeatureUpdates) {
			return kerr.UnknownServerError.Code, kmsg.StringPtr(fmt.Sprintf("%d results for %d updates", len(r.Results), len(req.FeatureUpdates)))
		}
		return 0, nil
	})
	return err
}
