package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kafkit/kafkit/broker"
)

func describeLine(feature, lo, hi, finalized, epoch string) string {
	return "Feature: " + feature + "\tSupportedMinVersion: " + lo + "\tSupportedMaxVersion: " + hi + "\tFinalizedVersionLevel: " + finalized + "\tEpoch: " + epoch + "\n"
}

// kafka-features.sh against a single node: describe as Kafka's
// FeatureCommand prints it, a dry run that changes nothing, a downgrade
// to a release's levels, Kafka's refusals, and the upgrade back.
func TestFeaturesTool(t *testing.T) {
	b := broker.NewTest(t)
	addr := b.Addr()
	features := func(args ...string) result {
		return tool(t, "kafka-features.sh", "", append([]string{"--bootstrap-server", addr}, args...)...)
	}
	describe := func(group, mv, share, epoch string) string {
		return describeLine("group.version", "0", "1", group, epoch) + describeLine("kraft.version", "0", "1", "0", epoch) +
			describeLine("metadata.version", "3.3-IV3", "4.2-IV1", mv, epoch) + describeLine("share.version", "0", "1", share, epoch)
	}
	if r := features("describe"); r.code != 0 || r.out != describe("1", "4.2-IV1", "1", "0") {
		t.Fatalf("describe: exit %d\n%s\nwant\n%s", r.code, r.out, describe("1", "4.2-IV1", "1", "0"))
	}
	if r := features("downgrade", "--feature", "group.version=0", "--dry-run"); r.code != 0 || r.out != "group.version can be downgraded to 0.\n" {
		t.Fatalf("dry run: exit %d %q %q", r.code, r.out, r.err)
	}
	r := features("downgrade", "--release-version", "4.0")
	if want := "group.version was downgraded to 1.\nmetadata.version was downgraded to 25.\nshare.version was downgraded to 0.\n"; r.code != 0 || r.out != want {
		t.Fatalf("downgrade --release-version 4.0: exit %d %q %q, want %q", r.code, r.out, r.err, want)
	}
	if r := features("describe"); r.out != describe("1", "4.0-IV3", "0", "1") {
		t.Fatalf("describe after the downgrade:\n%s", r.out)
	}
	r = features("upgrade", "--feature", "share.version=2")
	if r.code == 0 || r.out != "Could not upgrade share.version to 2. The update failed for all features since the following feature had an error: Invalid update version 2 for feature share.version. Local controller 0 only supports versions 0-1\n" ||
		r.err != "1 out of 1 operation(s) failed.\n" {
		t.Fatalf("upgrade share.version=2: exit %d %q %q", r.code, r.out, r.err)
	}
	r = features("downgrade", "--metadata", "3.3")
	if r.code == 0 || !strings.Contains(r.out, "Could not downgrade metadata.version to 7. The update failed for all features since the following feature had an error: Invalid metadata.version 7. Refusing to perform the requested downgrade because it might delete metadata information.") {
		t.Fatalf("downgrade --metadata 3.3: exit %d %q %q", r.code, r.out, r.err)
	}
	for _, bad := range [][]string{
		{"upgrade", "--release-version", "4.2", "--feature", "group.version=1"},
		{"upgrade", "--release-version", "9.9"},
		{"upgrade", "--feature", "group.version"},
		{"upgrade"},
	} {
		if r := features(bad...); r.code == 0 {
			t.Errorf("%v succeeded: %q", bad, r.out)
		}
	}
	r = features("upgrade", "--release-version", "4.2")
	if want := "group.version was upgraded to 1.\nmetadata.version was upgraded to 29.\nshare.version was upgraded to 1.\n"; r.code != 0 || r.out != want {
		t.Fatalf("upgrade --release-version 4.2: exit %d %q %q", r.code, r.out, r.err)
	}
	if r := features("describe"); r.out != describe("1", "4.2-IV1", "1", "2") {
		t.Fatalf("describe after the upgrade:\n%s", r.out)
	}
}

// kafka-storage.sh format --release-version and --feature: a broker
// started on that log directory has those finalized levels.
func TestStorageFormatFeatures(t *testing.T) {
	dir := t.TempDir()
	props := filepath.Join(dir, "server.properties")
	logs := filepath.Join(dir, "logs")
	if err := os.WriteFile(props, []byte("node.id=1\nlisteners=PLAINTEXT://127.0.0.1:0\nlog.dirs="+logs+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	format := func(args ...string) result {
		return tool(t, "kafka-storage.sh", "", append([]string{"format", "-t", "AAAAAAAAAAAAAAAAAAAAAA", "-c", props}, args...)...)
	}
	for _, bad := range [][]string{
		{"--release-version", "9.9"},
		{"--feature", "kraft.version=1"},
		{"--feature", "x.version=1"},
		{"--feature", "share.version=2"},
	} {
		if r := format(bad...); r.code == 0 {
			t.Errorf("format %v succeeded", bad)
		}
		os.RemoveAll(logs)
	}
	if r := format("--release-version", "4.0", "--feature", "group.version=0"); r.code != 0 {
		t.Fatalf("format: %d %s", r.code, r.err)
	}
	b := startFromProperties(t, props)
	r := tool(t, "kafka-features.sh", "", "--bootstrap-server", b.Addr(), "describe")
	want := describeLine("group.version", "0", "1", "0", "0") + describeLine("kraft.version", "0", "1", "0", "0") +
		describeLine("metadata.version", "3.3-IV3", "4.2-IV1", "4.0-IV3", "0") + describeLine("share.version", "0", "1", "0", "0")
	if r.code != 0 || r.out != want {
		t.Fatalf("describe: exit %d\n%s\nwant\n%s", r.code, r.out, want)
	}
}
