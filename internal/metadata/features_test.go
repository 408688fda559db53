package metadata

import (
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestDefaultFeatures(t *testing.T) {
	for _, tc := range []struct {
		mv   int16
		want map[string]int16
	}{
		{29, map[string]int16{"metadata.version": 29, "group.version": 1, "share.version": 1}},
		{27, map[string]int16{"metadata.version": 27, "group.version": 1, "share.version": 0}},
		{21, map[string]int16{"metadata.version": 21, "group.version": 0, "share.version": 0}},
	} {
		if got := DefaultFeatures(tc.mv); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("DefaultFeatures(%d) = %v, want %v", tc.mv, got, tc.want)
		}
	}
}

func TestParseReleaseVersion(t *testing.T) {
	for in, want := range map[string]int16{"4.2": 29, "4.2-IV0": 28, "4.0": 25, "3.3-IV3": 7, "4.1.1": 27} {
		if got, err := ParseReleaseVersion(in); err != nil || got != want {
			t.Errorf("ParseReleaseVersion(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"4.3", "3.2", "x", "3.3-IV0"} {
		if _, err := ParseReleaseVersion(in); err == nil || !strings.Contains(err.Error(), "Unknown metadata.version '"+in+"'") {
			t.Errorf("ParseReleaseVersion(%q): %v", in, err)
		}
	}
}

// A log without metadata.version (written before kafkit kept features)
// reads as the latest defaults, and the first change makes them explicit.
func TestFeaturesOfAnOldLog(t *testing.T) {
	img := NewImage()
	if got := img.FinalizedFeatures(); !reflect.DeepEqual(got, DefaultFeatures(LatestMetadataVersion)) {
		t.Fatalf("finalized = %v", got)
	}
	recs, e, msg := img.UpdateFeatures([]FeatureUpdate{{Feature: "share.version", Level: 0, UpgradeType: SafeDowngrade}}, false, 1, 0)
	if e != nil {
		t.Fatal(e, msg)
	}
	if err := img.Apply(5, recs); err != nil {
		t.Fatal(err)
	}
	want := map[string]int16{"metadata.version": 29, "group.version": 1}
	if got := img.FinalizedFeatures(); !reflect.DeepEqual(got, want) {
		t.Fatalf("finalized = %v, want %v", got, want)
	}
	// A snapshot keeps them.
	snap := NewImage()
	if err := snap.Apply(5, img.Records()); err != nil || !maps.Equal(snap.Features, img.Features) {
		t.Fatalf("snapshot: %v %v", snap.Features, err)
	}
}

func TestUpdateFeatures(t *testing.T) {
	base := func() *Image {
		img := NewImage()
		if err := img.Apply(1, DefaultFeatureRecords(29)); err != nil {
			t.Fatal(err)
		}
		return img
	}
	for _, tc := range []struct {
		name    string
		updates []FeatureUpdate
		kraft   int16
		msg     string // "" for success
		want    map[string]int16
	}{
		{name: "unknown feature", updates: []FeatureUpdate{{"x.version", 1, Upgrade}},
			msg: "Invalid update version 1 for feature x.version. Local controller 3 does not support this feature."},
		{name: "unknown feature at 0", updates: []FeatureUpdate{{"x.version", 0, SafeDowngrade}},
			msg: "Invalid update version 0 for feature x.version. Feature x.version not found."},
		{name: "above range", updates: []FeatureUpdate{{"group.version", 2, Upgrade}},
			msg: "Invalid update version 2 for feature group.version. Local controller 3 only supports versions 0-1"},
		{name: "metadata.version above range", updates: []FeatureUpdate{{"metadata.version", 30, Upgrade}},
			msg: "Invalid update version 30 for feature metadata.version. Local controller 3 only supports versions 7-29"},
		{name: "negative", updates: []FeatureUpdate{{"group.version", -1, SafeDowngrade}},
			msg: "Invalid update version -1 for feature group.version. A feature version cannot be less than 0."},
		{name: "downgrade without the flag", updates: []FeatureUpdate{{"group.version", 0, Upgrade}},
			msg: "Invalid update version 0 for feature group.version. Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."},
		{name: "downgrade to a newer version", updates: []FeatureUpdate{{"metadata.version", 29, SafeDowngrade}}, // equal: allowed
			want: map[string]int16{"metadata.version": 29, "group.version": 1, "share.version": 1}},
		{name: "unknown upgrade type", updates: []FeatureUpdate{{"group.version", 1, 0}},
			msg: "Invalid update version 1 for feature group.version. The controller does not support the given upgrade type."},
		{name: "safe downgrade", updates: []FeatureUpdate{{"group.version", 0, SafeDowngrade}, {"metadata.version", 24, SafeDowngrade}},
			want: map[string]int16{"metadata.version": 24, "share.version": 1}},
		{name: "metadata downgrade across a change", updates: []FeatureUpdate{{"metadata.version", 22, SafeDowngrade}},
			msg: "Invalid metadata.version 22. Refusing to perform the requested downgrade because it might delete metadata information."},
		{name: "unsafe metadata downgrade", updates: []FeatureUpdate{{"metadata.version", 22, UnsafeDowngrade}},
			msg: "Invalid metadata.version 22. Unsafe metadata downgrade is not supported in this version."},
		{name: "kraft.version unchanged", updates: []FeatureUpdate{{"kraft.version", 1, Upgrade}}, kraft: 1,
			want: map[string]int16{"metadata.version": 29, "group.version": 1, "share.version": 1}},
		{name: "kraft.version upgrade", updates: []FeatureUpdate{{"kraft.version", 1, Upgrade}},
			msg: "Invalid update version 1 for feature kraft.version. kafkit does not change kraft.version at run time"},
		{name: "one bad update fails all", updates: []FeatureUpdate{{"group.version", 0, SafeDowngrade}, {"share.version", 2, Upgrade}},
			msg: "Invalid update version 2 for feature share.version."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := base()
			recs, e, msg := img.UpdateFeatures(tc.updates, false, 3, tc.kraft)
			if tc.msg != "" {
				if e != kerr.InvalidUpdateVersion || !strings.HasPrefix(msg, tc.msg) || recs != nil {
					t.Fatalf("got %v %q %v, want INVALID_UPDATE_VERSION %q", e, msg, recs, tc.msg)
				}
				return
			}
			if e != nil {
				t.Fatal(e, msg)
			}
			if vrecs, e, _ := base().UpdateFeatures(tc.updates, true, 3, tc.kraft); e != nil || vrecs != nil {
				t.Fatalf("validateOnly: %v %v", vrecs, e)
			}
			if err := img.Apply(2, recs); err != nil {
				t.Fatal(err)
			}
			if got := img.FinalizedFeatures(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("finalized = %v, want %v", got, tc.want)
			}
		})
	}
}

// A dynamic quorum (kraft.version 1) needs metadata.version 3.9-IV0: a
// downgrade below it is refused even where no metadata changed between.
func TestUpdateFeaturesKeepsDependencies(t *testing.T) {
	img := NewImage()
	if err := img.Apply(1, DefaultFeatureRecords(22)); err != nil {
		t.Fatal(err)
	}
	_, e, msg := img.UpdateFeatures([]FeatureUpdate{{"metadata.version", 20, SafeDowngrade}}, false, 1, 1)
	if e != kerr.InvalidUpdateVersion || msg != "Invalid update version 20 for feature metadata.version. metadata.version could not be set to 20 because kraft.version at level 1 depends on metadata.version level 21" {
		t.Fatalf("got %v %q", e, msg)
	}
	if _, e, msg := img.UpdateFeatures([]FeatureUpdate{{"metadata.version", 20, SafeDowngrade}}, false, 1, 0); e != nil {
		t.Fatalf("static quorum: %v %q", e, msg)
	}
}
