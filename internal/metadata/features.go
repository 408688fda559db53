package metadata

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Feature versioning (KIP-584, KIP-778, KIP-1022) as Kafka 4.2 has it:
// metadata.version and the features whose levels kafkit honours, their
// finalized levels kept in the log as FeatureLevel records, and the
// controller's decision on an UpdateFeatures request (Kafka's
// FeatureControlManager.updateFeatures).
//
// kafkit follows Kafka 4.2's protocol (share groups on by default, as
// share.version 1 is at metadata.version 4.2-IV0), so this build supports
// metadata.version 3.3-IV3 (7) to 4.2-IV1 (29) and these features:
//
//   - group.version 0-1: 1 enables KIP-848's consumer protocol
//     (ConsumerGroupHeartbeat and ConsumerGroupDescribe); at 0 they answer
//     UNSUPPORTED_VERSION, as Kafka's KafkaApis does.
//   - share.version 0-1: 1 enables share groups (KIP-932's seven client
//     APIs); at 0 they answer UNSUPPORTED_VERSION.
//   - kraft.version 0-1: the metadata quorum's, not a FeatureLevel record
//     (as in Kafka): 0 for a static quorum (controller.quorum.voters), 1
//     for a dynamic one (KIP-853); it cannot be changed at run time here.
//
// Kafka 4.2's transaction.version (KIP-890 part 2: kafkit writes
// transaction-state value v0 and serves EndTxn up to v4),
// eligible.leader.replicas.version (KIP-966: no ELR is kept) and
// streams.version (KIP-1071: no streams groups) are not offered: a client
// that read them finalized would use protocol kafkit does not have.
// metadata.version itself switches nothing on in kafkit's own record
// formats; it is kept, reported and checked (a downgrade across a level
// whose metadata changed is refused) as Kafka does, and features depend on
// it.

// TypeFeatureLevel is KRaft's FeatureLevelRecord.
const TypeFeatureLevel uint16 = 12

// FeatureLevel finalizes a feature at a level; level 0 of a feature other
// than metadata.version removes it (Kafka's replay).
type FeatureLevel struct {
	Name  string
	Level int16
}

func (*FeatureLevel) Type() uint16 { return TypeFeatureLevel }

func (x *FeatureLevel) appendTo(dst []byte) []byte {
	return kbin.AppendInt16(appendString(dst, x.Name), x.Level)
}
func (x *FeatureLevel) readFrom(r *kbin.Reader) { x.Name, x.Level = readString(r), r.Int16() }

// DynamicQuorumMinMetadataVersion is the metadata.version kraft.version 1
// (a dynamic quorum, KIP-853) needs: 3.9-IV0.
const DynamicQuorumMinMetadataVersion int16 = 21

// Feature names.
const (
	MetadataVersionFeature = "metadata.version"
	KRaftVersionFeature    = "kraft.version"
	GroupVersionFeature    = "group.version"
	ShareVersionFeature    = "share.version"
)

// MetadataVersion is one level of metadata.version.
type MetadataVersion struct {
	Level int16
	Name  string // 4.2-IV1
	// Changed is Kafka's didMetadataChange: a downgrade from this level to
	// one below it may lose metadata.
	Changed bool
}

// MetadataVersions are the levels this build supports, oldest first
// (Kafka's MetadataVersion from MINIMUM_VERSION to 4.2's
// LATEST_PRODUCTION).
var MetadataVersions = []MetadataVersion{
	{7, "3.3-IV3", true}, {8, "3.4-IV0", true}, {9, "3.5-IV0", false}, {10, "3.5-IV1", false},
	{11, "3.5-IV2", true}, {12, "3.6-IV0", false}, {13, "3.6-IV1", true}, {14, "3.6-IV2", true},
	{15, "3.7-IV0", true}, {16, "3.7-IV1", false}, {17, "3.7-IV2", true}, {18, "3.7-IV3", false},
	{19, "3.7-IV4", false}, {20, "3.8-IV0", false}, {21, "3.9-IV0", false}, {22, "4.0-IV0", false},
	{23, "4.0-IV1", true}, {24, "4.0-IV2", false}, {25, "4.0-IV3", false}, {26, "4.1-IV0", false},
	{27, "4.1-IV1", false}, {28, "4.2-IV0", false}, {29, "4.2-IV1", false},
}

// MinMetadataVersion and LatestMetadataVersion bound metadata.version.
var (
	MinMetadataVersion    = MetadataVersions[0].Level
	LatestMetadataVersion = MetadataVersions[len(MetadataVersions)-1].Level
)

// metadataVersion returns the level's entry, or false.
func metadataVersion(level int16) (MetadataVersion, bool) {
	i := int(level - MinMetadataVersion)
	if i < 0 || i >= len(MetadataVersions) {
		return MetadataVersion{}, false
	}
	return MetadataVersions[i], true
}

// MetadataVersionName is the release name of a level ("4.2-IV1"), or the
// number for an unknown one.
func MetadataVersionName(level int16) string {
	if mv, ok := metadataVersion(level); ok {
		return mv.Name
	}
	return strconv.Itoa(int(level))
}

// ParseReleaseVersion is Kafka's MetadataVersion.fromVersionString: "4.2"
// (the release's last level), "4.2-IV0", or "4.2.1" (the first two parts).
func ParseReleaseVersion(s string) (int16, error) {
	key := s
	if parts := strings.Split(s, "."); len(parts) > 2 {
		key = parts[0] + "." + parts[1]
	}
	level := int16(-1)
	for _, mv := range MetadataVersions {
		if mv.Name == key || strings.HasPrefix(mv.Name, key+"-") {
			level = mv.Level
		}
	}
	if level < 0 {
		return 0, fmt.Errorf("Unknown metadata.version '%s'. Supported metadata.version are: %s", s, MetadataVersionNames())
	}
	return level, nil
}

// MetadataVersionNames lists the supported levels' names, oldest first.
func MetadataVersionNames() string {
	names := make([]string, len(MetadataVersions))
	for i, mv := range MetadataVersions {
		names[i] = mv.Name
	}
	return strings.Join(names, ", ")
}

// featureLevelSpec is one level of a feature: the metadata.version from
// which a new cluster starts with it (Kafka's bootstrapMetadataVersion)
// and the levels of other features it needs.
type featureLevelSpec struct {
	bootstrapMV int16
	deps        map[string]int16
}

// FeatureSpec is a feature this build supports, levels 0 to Max.
type FeatureSpec struct {
	Name   string
	levels []featureLevelSpec // by level
}

// Max is the feature's highest supported level.
func (f FeatureSpec) Max() int16 { return int16(len(f.levels) - 1) }

// Features are the features other than metadata.version this build
// supports, as Kafka's Feature enum defines their levels.
var Features = []FeatureSpec{
	{Name: GroupVersionFeature, levels: []featureLevelSpec{{bootstrapMV: 7}, {bootstrapMV: 22}}},
	{Name: KRaftVersionFeature, levels: []featureLevelSpec{{bootstrapMV: 7}, {bootstrapMV: 21, deps: map[string]int16{MetadataVersionFeature: DynamicQuorumMinMetadataVersion}}}},
	{Name: ShareVersionFeature, levels: []featureLevelSpec{{bootstrapMV: 7}, {bootstrapMV: 28}}},
}

func featureSpec(name string) (FeatureSpec, bool) {
	for _, f := range Features {
		if f.Name == name {
			return f, true
		}
	}
	return FeatureSpec{}, false
}

// SupportedRange is the levels this build supports of a feature; ok is
// false for a feature it does not know (Kafka's DISABLED range, 0-0).
func SupportedRange(name string) (minLevel, maxLevel int16, ok bool) {
	if name == MetadataVersionFeature {
		return MinMetadataVersion, LatestMetadataVersion, true
	}
	if f, ok := featureSpec(name); ok {
		return 0, f.Max(), true
	}
	return 0, 0, false
}

// DefaultFeatures are the finalized levels a new cluster at metadata
// version mv starts with (kafka-storage format --release-version): each
// feature's highest level whose bootstrap version is at most mv.
// kraft.version is left out: the quorum's configuration says it.
func DefaultFeatures(mv int16) map[string]int16 {
	out := map[string]int16{MetadataVersionFeature: mv}
	for _, f := range Features {
		if f.Name == KRaftVersionFeature {
			continue
		}
		var level int16
		for l, s := range f.levels {
			if s.bootstrapMV <= mv {
				level = int16(l)
			}
		}
		out[f.Name] = level
	}
	return out
}

// DefaultFeatureRecords are DefaultFeatures as records, in name order.
func DefaultFeatureRecords(mv int16) []Record {
	return FeatureRecords(DefaultFeatures(mv))
}

// FeatureRecords are FeatureLevel records of levels, in name order.
func FeatureRecords(levels map[string]int16) []Record {
	var out []Record
	for _, name := range slices.Sorted(maps.Keys(levels)) {
		out = append(out, &FeatureLevel{Name: name, Level: levels[name]})
	}
	return out
}

// FinalizedFeatures are the image's finalized levels, metadata.version
// included, without kraft.version (the quorum's). A log written before
// kafkit kept feature levels has no metadata.version: it is read as the
// latest defaults, what kafkit did then.
func (img *Image) FinalizedFeatures() map[string]int16 {
	if _, ok := img.Features[MetadataVersionFeature]; !ok {
		out := DefaultFeatures(LatestMetadataVersion)
		maps.Copy(out, img.Features)
		return out
	}
	return maps.Clone(img.Features)
}

func (img *Image) applyFeatureLevel(x *FeatureLevel) error {
	if x.Level < 0 {
		return fmt.Errorf("feature %s at level %d", x.Name, x.Level)
	}
	if x.Level == 0 && x.Name != MetadataVersionFeature {
		delete(img.Features, x.Name)
		return nil
	}
	img.Features[x.Name] = x.Level
	return nil
}

// Upgrade types of UpdateFeatures (v1+; v0's AllowDowngrade is
// SafeDowngrade).
const (
	Upgrade         int8 = 1
	SafeDowngrade   int8 = 2
	UnsafeDowngrade int8 = 3
)

// FeatureUpdate is one entry of an UpdateFeatures request.
type FeatureUpdate struct {
	Feature     string
	Level       int16
	UpgradeType int8
}

// UpdateFeatures is the controller's decision on an UpdateFeatures
// request (Kafka's FeatureControlManager.updateFeatures): the records of
// the change, none when validateOnly, or the first update's error with
// Kafka's message; the request fails as a whole. controller names the
// deciding node in the messages; kraft is the quorum's kraft.version,
// which kafkit cannot change.
func (img *Image) UpdateFeatures(updates []FeatureUpdate, validateOnly bool, controller int32, kraft int16) ([]Record, *kerr.Error, string) {
	current := img.FinalizedFeatures()
	current[KRaftVersionFeature] = kraft
	proposed := maps.Clone(current)
	for _, u := range updates {
		proposed[u.Feature] = u.Level
	}
	var recs []Record
	if _, ok := img.Features[MetadataVersionFeature]; !ok {
		// The levels the log's readers assume become explicit first.
		recs = FeatureRecords(DefaultFeatures(LatestMetadataVersion))
	}
	for _, u := range updates {
		e, msg := updateFeature(u, current[u.Feature], proposed, controller)
		if e != nil {
			return nil, e, msg
		}
		if u.Feature != KRaftVersionFeature {
			recs = append(recs, &FeatureLevel{Name: u.Feature, Level: u.Level})
		}
	}
	if validateOnly {
		return nil, nil, ""
	}
	return recs, nil, ""
}

func updateFeature(u FeatureUpdate, cur int16, proposed map[string]int16, controller int32) (*kerr.Error, string) {
	invalid := func(msg string) (*kerr.Error, string) {
		return kerr.InvalidUpdateVersion, fmt.Sprintf("Invalid update version %d for feature %s. %s", u.Level, u.Feature, msg)
	}
	if u.UpgradeType < Upgrade || u.UpgradeType > UnsafeDowngrade {
		return invalid("The controller does not support the given upgrade type.")
	}
	if u.Level < 0 {
		return invalid("A feature version cannot be less than 0.")
	}
	lo, hi, known := SupportedRange(u.Feature)
	if u.Level < lo || u.Level > hi {
		if hi == 0 {
			return invalid(fmt.Sprintf("Local controller %d does not support this feature.", controller))
		}
		return invalid(fmt.Sprintf("Local controller %d only supports versions %s", controller, versionRange(lo, hi)))
	}
	switch {
	case u.Level < cur && u.UpgradeType == Upgrade:
		return invalid("Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.")
	case u.Level > cur && u.UpgradeType != Upgrade:
		return invalid("Can't downgrade to a newer version.")
	}
	if u.Feature == MetadataVersionFeature {
		if e, msg := updateMetadataVersion(u, cur); e != nil {
			return e, msg
		}
		return dependents(u, proposed)
	}
	if !known {
		return invalid("Feature " + u.Feature + " not found.")
	}
	if u.Feature == KRaftVersionFeature && u.Level != cur {
		return invalid(fmt.Sprintf("kafkit does not change kraft.version at run time: it is %d, set by the quorum's configuration (0: controller.quorum.voters, 1: a dynamic quorum with controller.quorum.bootstrap.servers).", cur))
	}
	f, _ := featureSpec(u.Feature)
	for dep, need := range f.levels[u.Level].deps {
		if proposed[dep] < need {
			return invalid(fmt.Sprintf("%s could not be set to %d because it depends on %s level %d", u.Feature, u.Level, dep, need))
		}
	}
	return dependents(u, proposed)
}

// dependents refuses an update that lowers a feature below a level another
// finalized feature needs (kafkit's check: kraft.version 1 needs
// metadata.version 3.9-IV0).
func dependents(u FeatureUpdate, proposed map[string]int16) (*kerr.Error, string) {
	for _, other := range Features {
		if other.Name == u.Feature || proposed[other.Name] <= 0 || int(proposed[other.Name]) >= len(other.levels) {
			continue
		}
		if need, ok := other.levels[proposed[other.Name]].deps[u.Feature]; ok && u.Level < need {
			return kerr.InvalidUpdateVersion, fmt.Sprintf("Invalid update version %d for feature %s. %s could not be set to %d because %s at level %d depends on %s level %d",
				u.Level, u.Feature, u.Feature, u.Level, other.Name, proposed[other.Name], u.Feature, need)
		}
	}
	return nil, ""
}

// updateMetadataVersion is Kafka's extra checks of a metadata.version
// change: no level below the first with FeatureLevelRecord, and a
// downgrade only across levels whose metadata did not change.
func updateMetadataVersion(u FeatureUpdate, cur int16) (*kerr.Error, string) {
	invalid := func(msg string) (*kerr.Error, string) {
		return kerr.InvalidUpdateVersion, fmt.Sprintf("Invalid metadata.version %d. %s", u.Level, msg)
	}
	if _, ok := metadataVersion(u.Level); !ok {
		return invalid("Unknown metadata.version.")
	}
	if u.Level < cur {
		changed := false
		for l := cur; l > u.Level; l-- {
			if mv, _ := metadataVersion(l); mv.Changed {
				changed = true
			}
		}
		switch {
		case !changed:
		case u.UpgradeType == UnsafeDowngrade:
			return invalid("Unsafe metadata downgrade is not supported in this version.")
		default:
			return invalid("Refusing to perform the requested downgrade because it might delete metadata information.")
		}
	}
	return nil, ""
}

// versionRange is Kafka's VersionRange.toString.
func versionRange(lo, hi int16) string {
	if lo == hi {
		return strconv.Itoa(int(lo))
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}
