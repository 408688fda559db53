package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/internal/metadata"
)

// featuresCmd is kafka-features.sh (Kafka's FeatureCommand): describe the
// supported and finalized features, and upgrade, downgrade or disable
// finalized levels, printed as Kafka's tool prints them. --release-version
// sets metadata.version and every feature to that release's defaults
// (kraft.version aside: the quorum's configuration sets it here).
func featuresCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "features",
		Aliases: []string{"kafka-features"},
		Short:   "Describe and change the cluster's feature levels (like kafka-features.sh)",
	}
	controllerFlag(g, cmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "describe",
		Short: "Each feature's supported range and finalized level",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return g.withAdmin(c, func(ctx context.Context, adm *admin.Client) error {
				fm, err := adm.DescribeFeatures(ctx)
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(g.io.Out, fm)
				}
				epoch := "-"
				if fm.FinalizedEpoch >= 0 {
					epoch = strconv.FormatInt(fm.FinalizedEpoch, 10)
				}
				for _, name := range slices.Sorted(maps.Keys(fm.Supported)) {
					r := fm.Supported[name]
					fmt.Fprintf(g.io.Out, "Feature: %s\tSupportedMinVersion: %s\tSupportedMaxVersion: %s\tFinalizedVersionLevel: %s\tEpoch: %s\n",
						name, levelString(name, r.Min), levelString(name, r.Max), levelString(name, fm.Finalized[name].Max), epoch)
				}
				return nil
			})
		},
	})
	for _, op := range []string{"upgrade", "downgrade", "disable"} {
		cmd.AddCommand(featureUpdateCmd(g, op))
	}
	return cmd
}

// levelString is FeatureCommand.levelToString: metadata.version by name.
func levelString(feature string, level int16) string {
	if feature != metadata.MetadataVersionFeature {
		return strconv.Itoa(int(level))
	}
	if name := metadata.MetadataVersionName(level); name != strconv.Itoa(int(level)) {
		return name
	}
	return fmt.Sprintf("UNKNOWN %d", level)
}

func featureUpdateCmd(g *globals, op string) *cobra.Command {
	var release, mv string
	var features []string
	var dryRun, unsafe bool
	use := op + " [--release-version V | --metadata V | --feature name=level ...] [--dry-run]"
	if op == "disable" {
		use = "disable --feature name ... [--dry-run]"
	}
	c := &cobra.Command{
		Use:   use,
		Short: map[string]string{"upgrade": "Raise finalized levels", "downgrade": "Lower finalized levels", "disable": "Set features to level 0"}[op],
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			typ := admin.Upgrade
			if op != "upgrade" {
				typ = admin.SafeDowngrade
				if unsafe {
					typ = admin.UnsafeDowngrade
				}
			}
			updates, err := featureUpdates(op, typ, release, mv, features)
			if err != nil {
				return err
			}
			if len(updates) == 0 {
				return fmt.Errorf("You must specify at least one feature to %s", op)
			}
			return g.withAdmin(c, func(ctx context.Context, adm *admin.Client) error {
				return printFeatureUpdates(g, op, updates, dryRun, adm.UpdateFeatures(ctx, updates, dryRun))
			})
		},
	}
	f := c.Flags()
	if op != "disable" {
		f.StringVar(&release, "release-version", "", "the release whose metadata.version and feature defaults to set (4.2, 4.2-IV0, ...)")
		f.StringVar(&mv, "metadata", "", "the metadata.version to set (deprecated in Kafka: use --release-version or --feature)")
		f.StringArrayVar(&features, "feature", nil, "a feature to change, name=level")
	} else {
		f.StringArrayVar(&features, "feature", nil, "a feature to disable")
	}
	if op == "downgrade" || op == "disable" {
		f.BoolVar(&unsafe, "unsafe", false, "allow a downgrade that may lose metadata")
	}
	f.BoolVar(&dryRun, "dry-run", false, "validate the change without making it")
	return c
}

// featureUpdates are the updates the flags ask for, as FeatureCommand
// builds them.
func featureUpdates(op string, typ admin.UpgradeType, release, mv string, features []string) (map[string]admin.FeatureUpdate, error) {
	updates := map[string]admin.FeatureUpdate{}
	if op == "disable" {
		for _, name := range features {
			updates[strings.TrimSpace(name)] = admin.FeatureUpdate{Level: 0, UpgradeType: typ}
		}
		return updates, nil
	}
	if release != "" && (mv != "" || len(features) > 0) {
		return nil, errors.New("Can not specify `release-version` with other feature flags.")
	}
	parseMV := func(s string) (int16, error) {
		level, err := metadata.ParseReleaseVersion(s)
		if err != nil {
			return 0, fmt.Errorf("Unknown metadata.version %s. Supported metadata.version are %s", s, metadata.MetadataVersionNames())
		}
		return level, nil
	}
	if release != "" {
		level, err := parseMV(release)
		if err != nil {
			return nil, err
		}
		for name, l := range metadata.DefaultFeatures(level) {
			// No request to upgrade a feature to 0.
			if typ != admin.Upgrade || l > 0 || name == metadata.MetadataVersionFeature {
				updates[name] = admin.FeatureUpdate{Level: l, UpgradeType: typ}
			}
		}
		return updates, nil
	}
	if mv != "" {
		level, err := parseMV(mv)
		if err != nil {
			return nil, err
		}
		updates[metadata.MetadataVersionFeature] = admin.FeatureUpdate{Level: level, UpgradeType: typ}
	}
	for _, nl := range features {
		name, levelStr, ok := strings.Cut(nl, "=")
		if !ok {
			return nil, fmt.Errorf("Can't parse feature=level string %s: equals sign not found.", nl)
		}
		name, levelStr = strings.TrimSpace(name), strings.TrimSpace(levelStr)
		level, err := strconv.ParseInt(levelStr, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("Can't parse feature=level string %s: unable to parse %s as a short.", nl, levelStr)
		}
		if _, dup := updates[name]; dup {
			return nil, fmt.Errorf("Feature %s was specified more than once.", name)
		}
		updates[name] = admin.FeatureUpdate{Level: int16(level), UpgradeType: typ}
	}
	return updates, nil
}

// printFeatureUpdates prints each feature's outcome as FeatureCommand
// does: the controller applies all or none, so an error is every
// feature's.
func printFeatureUpdates(g *globals, op string, updates map[string]admin.FeatureUpdate, dryRun bool, err error) error {
	msg := ""
	if err != nil {
		msg = err.Error()
		var ae *admin.Error
		if errors.As(err, &ae) && ae.Message != "" {
			msg = ae.Message
		}
	}
	for _, name := range slices.Sorted(maps.Keys(updates)) {
		level := updates[name].Level
		target := fmt.Sprintf("%s %s to %d", op, name, level)
		if op == "disable" {
			target = "disable " + name
		}
		if err != nil {
			helper := "Could not "
			if dryRun {
				helper = "Can not "
			}
			fmt.Fprintf(g.io.Out, "%s%s. %s\n", helper, target, msg)
			continue
		}
		verb, obj := " was ", op+"d to "+strconv.Itoa(int(level))+"."
		if dryRun {
			verb = " can be "
		}
		if op == "disable" {
			obj = "disabled."
		}
		fmt.Fprintf(g.io.Out, "%s%s%s\n", name, verb, obj)
	}
	if err != nil {
		fmt.Fprintf(g.io.Err, "%d out of %d operation(s) failed.\n", len(updates), len(updates))
		return errReported
	}
	return nil
}

// formatFeatures are the levels kafka-storage format's --release-version
// and --feature ask for (nil for neither: the broker's defaults), checked
// as the controller would check an upgrade from nothing.
func formatFeatures(release string, features []string) (map[string]int16, error) {
	if release == "" && len(features) == 0 {
		return nil, nil
	}
	mv := metadata.LatestMetadataVersion
	if release != "" {
		var err error
		if mv, err = metadata.ParseReleaseVersion(release); err != nil {
			return nil, err
		}
	}
	levels := metadata.DefaultFeatures(mv)
	overrides, err := featureUpdates("upgrade", admin.Upgrade, "", "", features)
	if err != nil {
		return nil, err
	}
	for name, u := range overrides {
		lo, hi, ok := metadata.SupportedRange(name)
		switch {
		case !ok || name == metadata.KRaftVersionFeature:
			return nil, fmt.Errorf("Unsupported feature: %s. Supported features are: %s", name, strings.Join(formatFeatureNames(), ", "))
		case u.Level < lo || u.Level > hi:
			return nil, fmt.Errorf("Feature %s: level %d is not in the supported range %d-%d", name, u.Level, lo, hi)
		}
		levels[name] = u.Level
	}
	return levels, nil
}

// formatFeatureNames are the features format may set: kraft.version is
// the quorum's (--standalone, --initial-controllers).
func formatFeatureNames() []string {
	names := []string{metadata.MetadataVersionFeature}
	for _, f := range metadata.Features {
		if f.Name != metadata.KRaftVersionFeature {
			names = append(names, f.Name)
		}
	}
	return names
}
