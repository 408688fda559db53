package broker

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// Feature versioning (KIP-584, KIP-778, KIP-1022): the features this build
// supports and the cluster's finalized levels, reported in ApiVersions
// v3+ by every node, changed by UpdateFeatures (57_update_features.go),
// and honoured by the APIs they gate (withFeatureGates). Which features
// and what each level switches on: internal/metadata/features.go.
//
// On a cluster the finalized levels are the metadata image's (FeatureLevel
// records), their epoch the image's offset, as Kafka's KRaftMetadataCache
// reports them; the first batch of the log carries the formatted levels
// (kafka-storage format --release-version/--feature, else the latest
// release's defaults). A single node keeps them in featuresFile, its epoch
// counting its changes.

// featuresFile holds a single node's finalized features, in <log.dirs>.
const featuresFile = "finalized-features.json"

// featureState is what ApiVersions reports and the gates read.
type featureState struct {
	// mu serializes a single node's changes with their write to
	// featuresFile.
	mu  sync.Mutex
	cur atomic.Pointer[finalizedFeatures]
}

// finalizedFeatures are the finalized levels at one epoch; never changed
// once stored.
type finalizedFeatures struct {
	Levels map[string]int16 // metadata.version included, kraft.version not
	Epoch  int64
	// fromImage marks levels read from the metadata image (a cluster's):
	// until then they are the bootstrap's.
	fromImage bool
}

// openFeatures reads a single node's finalized features, or the formatted
// ones that a new single node or cluster starts with (bootstrapRecords).
func openFeatures(b *Broker) (*featureState, error) {
	f := &featureState{}
	var stored finalizedFeatures
	if !b.cfg.clusterMode() {
		if err := readJSON(b.fs, b.cfg.DataDir+"/"+featuresFile, &stored); err != nil {
			return nil, err
		}
	}
	if stored.Levels == nil {
		recs, err := b.bootstrapRecords()
		if err != nil {
			return nil, err
		}
		img := metadata.NewImage()
		if err := img.Apply(0, recs); err != nil {
			return nil, fmt.Errorf("%s: %w", bootstrapFile, err)
		}
		stored = finalizedFeatures{Levels: img.FinalizedFeatures()}
		if b.cfg.clusterMode() {
			stored.Epoch = -1 // Kafka's "unknown" until the image is read
		}
	}
	f.cur.Store(&stored)
	return f, nil
}

// kraftVersion is the quorum's kraft.version: 1 for a dynamic quorum
// (KIP-853), 0 for a static one and a single node.
func (b *Broker) kraftVersion() int16 {
	if b.cfg.dynamicQuorum() {
		return 1
	}
	return 0
}

// featureLevel is a feature's finalized level (0 when not finalized).
func (b *Broker) featureLevel(name string) int16 {
	if name == metadata.KRaftVersionFeature {
		return b.kraftVersion()
	}
	return b.features.cur.Load().Levels[name]
}

// fromImage takes a cluster node's finalized features from its image after
// a batch was applied; on raft's FSM goroutine.
func (f *featureState) fromImage(records []metadata.Record, img *metadata.Image) {
	cur := f.cur.Load()
	next := &finalizedFeatures{Levels: cur.Levels, Epoch: int64(img.Offset), fromImage: true}
	if !cur.fromImage || slices.ContainsFunc(records, func(r metadata.Record) bool { return r.Type() == metadata.TypeFeatureLevel }) {
		next.Levels = img.FinalizedFeatures()
	}
	f.cur.Store(next)
}

// setAPIVersionsFeatures fills ApiVersions v3+'s tagged fields as Kafka's
// ApiVersionsResponse.Builder does: below v4 no supported feature whose
// minimum is 0 (older clients fail to read one, KAFKA-17492), and no
// finalized feature at level 0.
func (b *Broker) setAPIVersionsFeatures(resp *kmsg.ApiVersionsResponse, version int16) {
	if version < 3 {
		return
	}
	supported := func(name string, lo, hi int16) {
		if version < 4 && lo == 0 {
			return
		}
		resp.SupportedFeatures = append(resp.SupportedFeatures, kmsg.ApiVersionsResponseSupportedFeature{Name: name, MinVersion: lo, MaxVersion: hi})
	}
	supported(metadata.MetadataVersionFeature, metadata.MinMetadataVersion, metadata.LatestMetadataVersion)
	for _, f := range metadata.Features {
		supported(f.Name, 0, f.Max())
	}
	cur := b.features.cur.Load()
	levels := maps.Clone(cur.Levels)
	levels[metadata.KRaftVersionFeature] = b.kraftVersion()
	for _, name := range slices.Sorted(maps.Keys(levels)) {
		if l := levels[name]; l != 0 {
			resp.FinalizedFeatures = append(resp.FinalizedFeatures, kmsg.ApiVersionsResponseFinalizedFeature{Name: name, MinVersionLevel: l, MaxVersionLevel: l})
		}
	}
	resp.FinalizedFeaturesEpoch = cur.Epoch
}

// updateFeaturesLocal is UpdateFeatures on a single node: the controller's
// decision on its own levels, written to featuresFile before the answer.
func (b *Broker) updateFeaturesLocal(updates []metadata.FeatureUpdate, validateOnly bool) (*kerr.Error, string) {
	f := b.features
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.cur.Load()
	img := metadata.NewImage()
	if err := img.Apply(uint64(max(cur.Epoch, 0)), metadata.FeatureRecords(cur.Levels)); err != nil {
		return kerr.UnknownServerError, err.Error()
	}
	recs, e, msg := img.UpdateFeatures(updates, validateOnly, b.nodeID, b.kraftVersion())
	if e != nil || len(recs) == 0 {
		return e, msg
	}
	if err := img.Apply(img.Offset+1, recs); err != nil {
		return kerr.UnknownServerError, err.Error()
	}
	next := &finalizedFeatures{Levels: img.FinalizedFeatures(), Epoch: int64(img.Offset)}
	if err := writeJSON(b.fs, b.cfg.DataDir+"/"+featuresFile, next); err != nil {
		b.log.Warn("writing "+featuresFile, "err", err)
		return kerr.KafkaStorageError, err.Error()
	}
	f.cur.Store(next)
	b.log.Info("finalized features updated", "features", next.Levels, "epoch", next.Epoch)
	return nil, ""
}

// featureGates are the APIs a feature level enables (Kafka's KafkaApis:
// isConsumerGroupProtocolEnabled, isShareGroupProtocolEnabled).
var featureGates = map[kmsg.Key]string{
	kmsg.ConsumerGroupHeartbeat:    metadata.GroupVersionFeature,
	kmsg.ConsumerGroupDescribe:     metadata.GroupVersionFeature,
	kmsg.ShareGroupHeartbeat:       metadata.ShareVersionFeature,
	kmsg.ShareGroupDescribe:        metadata.ShareVersionFeature,
	kmsg.ShareFetch:                metadata.ShareVersionFeature,
	kmsg.ShareAcknowledge:          metadata.ShareVersionFeature,
	kmsg.DescribeShareGroupOffsets: metadata.ShareVersionFeature,
	kmsg.AlterShareGroupOffsets:    metadata.ShareVersionFeature,
	kmsg.DeleteShareGroupOffsets:   metadata.ShareVersionFeature,
}

// withFeatureGates answers the gated APIs UNSUPPORTED_VERSION while their
// feature is finalized at 0, before any authorization, as Kafka does; the
// API stays in ApiVersions, as in Kafka.
func (b *Broker) withFeatureGates(t *handlerTable) {
	for key, feature := range featureGates {
		h := t.lookup(int16(key))
		if h == nil {
			continue
		}
		next := h.fn
		h.fn = func(rc *reqCtx, req kmsg.Request) (kmsg.Response, error) {
			if b.featureLevel(feature) >= 1 {
				return next(rc, req)
			}
			resp := errorResponse(req, kerr.UnsupportedVersion, "")
			switch r := resp.(type) {
			case *kmsg.ShareFetchResponse: // getErrorResponse: the top-level error alone
				r.Topics = nil
			case *kmsg.ShareAcknowledgeResponse:
				r.Topics = nil
			}
			return resp, nil
		}
	}
}
