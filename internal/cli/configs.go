package cli

import (
	"context"
	"fmt"

	"github.com/kafkit/kafkit/admin"
	"github.com/spf13/cobra"
)

func configsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "configs", Short: "Describe and alter topic and broker configs and client quotas (like kafka-configs.sh)"}
	var (
		entityType, entityName string
		topic, broker          string
		user, client, ip       string
		entityDefault          bool
	)
	pf := cmd.PersistentFlags()
	pf.StringVar(&entityType, "entity-type", "", "topics, brokers, groups, or users (quotas and SCRAM credentials), clients or ips (quotas)")
	pf.StringVar(&entityName, "entity-name", "", "the topic name, broker id, user principal name, client id or ip")
	pf.BoolVar(&entityDefault, "entity-default", false, "the cluster-wide default (brokers), or the default user, client or ip")
	pf.StringVar(&user, "user", "", "short for --entity-type users --entity-name USER (with --client: that user's client)")
	pf.StringVar(&client, "client", "", "short for --entity-type clients --entity-name CLIENT")
	pf.StringVar(&ip, "ip", "", "short for --entity-type ips --entity-name IP")
	// quota reports whether the command names a client quota entity
	// (users, clients, ips), and which.
	quota := func() (quotaTarget, bool, error) {
		var t quotaTarget
		if _, ok := quotaEntityTypes[entityType]; ok {
			if user != "" || client != "" || ip != "" {
				return t, true, fmt.Errorf("give the entity either with --entity-type or with --user, --client and --ip")
			}
			var name *string
			if entityName != "" {
				name = &entityName
			}
			t.add(entityType, name, entityName != "" || entityDefault)
			return t, true, nil
		}
		for _, e := range []struct{ typ, name string }{{"users", user}, {"clients", client}, {"ips", ip}} {
			if e.name != "" {
				t.add(e.typ, &e.name, true)
			}
		}
		if len(t.types) > 0 && entityType != "" {
			return t, true, fmt.Errorf("give the entity either with --entity-type or with --user, --client and --ip")
		}
		return t, len(t.types) > 0, nil
	}
	pf.StringVar(&topic, "topic", "", "short for --entity-type topics --entity-name TOPIC")
	pf.StringVar(&broker, "broker", "", "short for --entity-type brokers --entity-name ID")
	resource := func() (admin.ConfigResource, error) {
		switch {
		case topic != "" && broker != "", (topic != "" || broker != "") && entityType != "":
			return admin.ConfigResource{}, fmt.Errorf("give one entity: --topic, --broker, or --entity-type with --entity-name")
		case topic != "":
			entityType, entityName = "topics", topic
		case broker != "":
			entityType, entityName = "brokers", broker
		}
		if entityDefault && entityName != "" {
			return admin.ConfigResource{}, fmt.Errorf("--entity-default and --entity-name cannot be used together")
		}
		switch entityType {
		case "topics", "topic":
			if entityName == "" {
				return admin.ConfigResource{}, fmt.Errorf("--entity-name is required for --entity-type topics")
			}
			return admin.ConfigResource{Type: admin.TopicResource, Name: entityName}, nil
		case "brokers", "broker":
			return admin.ConfigResource{Type: admin.BrokerResource, Name: entityName}, nil
		case "groups", "group":
			if entityName == "" {
				return admin.ConfigResource{}, fmt.Errorf("--entity-name is required for --entity-type groups")
			}
			return admin.ConfigResource{Type: admin.GroupResource, Name: entityName}, nil
		}
		return admin.ConfigResource{}, fmt.Errorf("--entity-type must be topics, brokers, groups, users, clients or ips, got %q", entityType)
	}

	var all bool
	describe := &cobra.Command{
		Use:   "describe --entity-type topics|brokers|users|clients|ips --entity-name X [--all]",
		Short: "Show the configs set on a topic or broker (every config with --all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if t, ok, err := quota(); ok || err != nil {
				if err != nil {
					return err
				}
				if err := g.describeQuotas(cmd, t); err != nil || !isUsersEntity(entityType) {
					return err
				}
				// kafka-configs.sh describes a user's quotas and then
				// its SCRAM credentials.
				return g.describeUserConfigs(cmd, entityName)
			}
			r, err := resource()
			if err != nil {
				return err
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				rcs, err := adm.DescribeConfigs(ctx, r)
				if err != nil {
					return unknownTopic(err, []string{entityName})
				}
				entries, which := rcs[0].Overrides(), "Dynamic"
				if all {
					entries, which = rcs[0].Entries, "All"
				}
				if g.output == "json" {
					return printJSON(g.io.Out, entries)
				}
				fmt.Fprintf(g.io.Out, "%s configs for %s %s are:\n", which, r.Type, r.Name)
				for _, e := range entries {
					v := "null"
					if e.Value != nil {
						v = *e.Value
					}
					fmt.Fprintf(g.io.Out, "  %s=%s sensitive=%t source=%s\n", e.Name, v, e.Sensitive, e.Source)
				}
				return nil
			})
		},
	}
	describe.Flags().BoolVar(&all, "all", false, "show every config, defaults included")

	var adds, deletes []string
	alter := &cobra.Command{
		Use:   "alter --entity-type topics|brokers|users|clients|ips --entity-name X [--add-config k=v[,k2=v2]] [--delete-config k[,k2]]",
		Short: "Set or remove configs, leaving the others as they are",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			set, err := keyValues("--add-config", adds, true)
			if err != nil {
				return err
			}
			if t, ok, err := quota(); ok || err != nil {
				if err != nil {
					return err
				}
				// A user's SCRAM credentials and quotas go through
				// their own APIs, as in Kafka's ConfigCommand.
				scramSet, quotaSet, scramDel, quotaDel := splitSCRAM(set, deleteKeys(deletes))
				if len(scramSet)+len(scramDel) > 0 {
					if err := g.alterUserConfigs(cmd, entityName, scramSet, scramDel); err != nil || len(quotaSet)+len(quotaDel) == 0 {
						return err
					}
				}
				return g.alterQuotas(cmd, t, quotaSet, quotaDel)
			}
			r, err := resource()
			if err != nil {
				return err
			}
			var ops []admin.AlterOp
			for _, k := range sortedKeys(set) {
				ops = append(ops, admin.AlterOp{Name: k, Op: admin.OpSet, Value: set[k]})
			}
			for _, k := range deleteKeys(deletes) {
				ops = append(ops, admin.AlterOp{Name: k, Op: admin.OpDelete})
			}
			if len(ops) == 0 {
				return fmt.Errorf("give --add-config or --delete-config")
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				if err := adm.IncrementalAlterConfigs(ctx, r, ops, false); err != nil {
					return unknownTopic(err, []string{entityName})
				}
				if g.output == "json" {
					return printJSON(g.io.Out, map[string]any{"Resource": r, "Changes": ops})
				}
				_, err := fmt.Fprintf(g.io.Out, "Completed updating config for %s %s.\n", r.Type, r.Name)
				return err
			})
		},
	}
	alter.Flags().StringArrayVar(&adds, "add-config", nil, "configs to set: k=v[,k2=v2]; [a,b] keeps a list value together (repeatable)")
	alter.Flags().StringArrayVar(&deletes, "delete-config", nil, "configs to remove: k[,k2] (repeatable)")
	cmd.AddCommand(describe, alter)
	return cmd
}
