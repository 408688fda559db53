package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kafkit/kafkit/admin"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// aclOpts are kafka-acls.sh's flags, shared by add, remove and list.
type aclOpts struct {
	topics, groups, txnIDs, users []string
	cluster, idempotent           bool
	patternType                   string
	allowPrincipals, denyPrincipals,
	allowHosts, denyHosts, operations []string
	producer, consumer, force bool
	principals                []string // list --principal
}

func (o *aclOpts) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&o.topics, "topic", nil, "topic to which ACLs apply (repeatable; * is every topic)")
	f.StringArrayVar(&o.groups, "group", nil, "consumer group to which ACLs apply (repeatable)")
	f.StringArrayVar(&o.txnIDs, "transactional-id", nil, "transactional id to which ACLs apply (repeatable)")
	f.StringArrayVar(&o.users, "user-principal", nil, "user principal as a resource (repeatable)")
	f.BoolVar(&o.cluster, "cluster", false, "the cluster as the resource")
	f.BoolVar(&o.idempotent, "idempotent", false, "with --producer: IDEMPOTENT_WRITE on the cluster")
	f.StringVar(&o.patternType, "resource-pattern-type", "LITERAL", "LITERAL or PREFIXED (and ANY or MATCH to list or remove)")
	f.StringArrayVar(&o.allowPrincipals, "allow-principal", nil, "principal allowed, as User:name (repeatable)")
	f.StringArrayVar(&o.denyPrincipals, "deny-principal", nil, "principal denied, as User:name (repeatable)")
	f.StringArrayVar(&o.allowHosts, "allow-host", nil, "host from which --allow-principal is allowed (default *)")
	f.StringArrayVar(&o.denyHosts, "deny-host", nil, "host from which --deny-principal is denied (default *)")
	f.StringArrayVar(&o.operations, "operation", nil, "operation: Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All (default All)")
	f.BoolVar(&o.producer, "producer", false, "the producer role: WRITE, DESCRIBE, CREATE on topics, WRITE, DESCRIBE on transactional ids")
	f.BoolVar(&o.consumer, "consumer", false, "the consumer role: READ, DESCRIBE on topics, READ on groups")
	f.BoolVar(&o.force, "force", false, "do not ask for confirmation")
	f.StringArrayVar(&o.principals, "principal", nil, "list only the ACLs of this principal (repeatable)")
}

// resources are the resource patterns the flags name, as
// AclCommand.getResourceFilter builds them.
func (o *aclOpts) resources(required bool) ([]admin.ACL, error) {
	pt, err := kmsg.ParseACLResourcePatternType(o.patternType)
	if err != nil {
		return nil, fmt.Errorf("--resource-pattern-type: %q is not ANY, MATCH, LITERAL or PREFIXED", o.patternType)
	}
	var out []admin.ACL
	add := func(t kmsg.ACLResourceType, names []string) {
		for _, n := range names {
			out = append(out, admin.ACL{ResourceType: t, ResourceName: strings.TrimSpace(n), PatternType: pt})
		}
	}
	add(kmsg.ACLResourceTypeTopic, o.topics)
	if pt == kmsg.ACLResourcePatternTypeLiteral && (o.cluster || o.idempotent) {
		add(kmsg.ACLResourceTypeCluster, []string{"kafka-cluster"})
	}
	add(kmsg.ACLResourceTypeGroup, o.groups)
	add(kmsg.ACLResourceTypeTransactionalId, o.txnIDs)
	add(kmsg.ACLResourceTypeUser, o.users)
	if len(out) == 0 && required {
		return nil, errors.New("You must provide at least one resource: --topic <topic> or --cluster or --group <group>")
	}
	return out, nil
}

// entries are the ACL entries for ops, one per principal, operation and
// host, as AclCommand.getAcl builds them.
func (o *aclOpts) entries(ops []kmsg.ACLOperation) ([]admin.ACL, error) {
	var out []admin.ACL
	for _, side := range []struct {
		principals, hosts []string
		perm              kmsg.ACLPermissionType
	}{{o.allowPrincipals, o.allowHosts, kmsg.ACLPermissionTypeAllow}, {o.denyPrincipals, o.denyHosts, kmsg.ACLPermissionTypeDeny}} {
		hosts := side.hosts
		if len(hosts) == 0 {
			hosts = []string{"*"}
		}
		for _, p := range side.principals {
			if _, _, ok := strings.Cut(p, ":"); !ok {
				return nil, fmt.Errorf("principal %q is not in principalType:name format (User:alice)", p)
			}
			for _, op := range ops {
				for _, h := range hosts {
					out = append(out, admin.ACL{Principal: strings.TrimSpace(p), Host: strings.TrimSpace(h), Operation: op, Permission: side.perm})
				}
			}
		}
	}
	return out, nil
}

// bindings pairs resources with entries as kafka-acls.sh does for its
// flags: --operation for every resource, or the --producer/--consumer
// roles' operations per resource type.
func (o *aclOpts) bindings() (map[admin.ACL][]admin.ACL, error) {
	res, err := o.resources(true)
	if err != nil {
		return nil, err
	}
	out := map[admin.ACL][]admin.ACL{}
	bind := func(r admin.ACL, ops ...kmsg.ACLOperation) error {
		if _, ok := out[r]; !ok {
			out[r] = nil // a resource without entries is a key too: remove all of its ACLs
		}
		es, err := o.entries(ops)
		for _, e := range es {
			if !slices.Contains(out[r], e) {
				out[r] = append(out[r], e)
			}
		}
		return err
	}
	if !o.producer && !o.consumer {
		var ops []kmsg.ACLOperation
		for _, s := range o.operations {
			op, err := kmsg.ParseACLOperation(strings.TrimSpace(s))
			if err != nil || op <= kmsg.ACLOperationAny {
				return nil, fmt.Errorf("--operation: %q is not a valid operation", s)
			}
			ops = append(ops, op)
		}
		if len(ops) == 0 {
			ops = []kmsg.ACLOperation{kmsg.ACLOperationAll}
		}
		for _, r := range res {
			if err := bind(r, ops...); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	for _, r := range res {
		var err error
		switch {
		case o.producer && r.ResourceType == kmsg.ACLResourceTypeTopic:
			err = bind(r, kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe, kmsg.ACLOperationCreate)
		case o.producer && r.ResourceType == kmsg.ACLResourceTypeTransactionalId:
			err = bind(r, kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe)
		case o.producer && o.idempotent && r.ResourceType == kmsg.ACLResourceTypeCluster:
			err = bind(r, kmsg.ACLOperationIdempotentWrite)
		}
		if err != nil {
			return nil, err
		}
		switch {
		case o.consumer && r.ResourceType == kmsg.ACLResourceTypeTopic:
			err = bind(r, kmsg.ACLOperationRead, kmsg.ACLOperationDescribe)
		case o.consumer && r.ResourceType == kmsg.ACLResourceTypeGroup:
			err = bind(r, kmsg.ACLOperationRead)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func aclsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "acls", Short: "Add, remove and list ACLs (like kafka-acls.sh)"}
	var add, remove, list aclOpts
	addCmd := &cobra.Command{
		Use:     "add (--allow-principal P | --deny-principal P)... (--topic T | --group G | --cluster | ...) [--operation OP]...",
		Aliases: []string{"create"},
		Short:   "Add ACLs",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pt := strings.ToUpper(add.patternType); pt != "LITERAL" && pt != "PREFIXED" {
				return fmt.Errorf("a '--resource-pattern-type' value of '%s' is not valid when adding acls", add.patternType)
			}
			bs, err := add.bindings()
			if err != nil {
				return err
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				for _, r := range sortedACLKeys(bs) {
					if len(bs[r]) == 0 {
						return errors.New("You must specify one of: --allow-principal, --deny-principal when trying to add ACLs.")
					}
					printACLs(g, "Adding ACLs for resource", r, bs[r])
					var acls []admin.ACL
					for _, e := range bs[r] {
						acls = append(acls, bind(r, e))
					}
					if err := adm.CreateACLs(ctx, acls...); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	add.flags(addCmd)
	removeCmd := &cobra.Command{
		Use:     "remove (--topic T | --group G | --cluster | ...) [--allow-principal P]... [--operation OP]... [--force]",
		Aliases: []string{"delete"},
		Short:   "Remove ACLs: the entries the flags name, or every ACL of the resources without principals",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bs, err := remove.bindings()
			if err != nil {
				return err
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				in := bufio.NewReader(g.io.In)
				for _, r := range sortedACLKeys(bs) {
					question := fmt.Sprintf("Are you sure you want to delete all ACLs for resource filter `%s`? (y/n)", r.Pattern())
					if len(bs[r]) > 0 {
						question = fmt.Sprintf("Are you sure you want to remove ACLs: \n %s \n from resource filter `%s`? (y/n)", joinEntries(bs[r]), r.Pattern())
					}
					if !remove.force {
						fmt.Fprintln(g.io.Out, question)
						if answer, _ := in.ReadString('\n'); !strings.EqualFold(strings.TrimSpace(answer), "y") {
							continue
						}
					}
					filters := []admin.ACLFilter{admin.ACLFilter(bind(r, admin.ACL{}))}
					if len(bs[r]) > 0 {
						filters = filters[:0]
						for _, e := range bs[r] {
							filters = append(filters, admin.ACLFilter(bind(r, e)))
						}
					}
					if _, err := adm.DeleteACLs(ctx, filters...); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	remove.flags(removeCmd)
	listCmd := &cobra.Command{
		Use:   "list [--topic T | --group G | --cluster | ...] [--principal P]...",
		Short: "List ACLs, of the resources named or all",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := list.resources(false)
			if err != nil {
				return err
			}
			return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
				filters := []admin.ACLFilter{{}}
				if len(res) > 0 {
					filters = filters[:0]
					for _, r := range res {
						filters = append(filters, admin.ACLFilter(r))
					}
				}
				byResource := map[admin.ACL][]admin.ACL{}
				for _, f := range filters {
					acls, err := adm.DescribeACLs(ctx, f)
					if err != nil {
						return err
					}
					for _, a := range acls {
						if len(list.principals) > 0 && !slices.Contains(list.principals, a.Principal) {
							continue
						}
						r := admin.ACL{ResourceType: a.ResourceType, ResourceName: a.ResourceName, PatternType: a.PatternType}
						byResource[r] = append(byResource[r], a)
					}
				}
				if g.output == "json" {
					var all []admin.ACL
					for _, r := range sortedACLKeys(byResource) {
						all = append(all, byResource[r]...)
					}
					return printJSON(g.io.Out, all)
				}
				for _, p := range list.principals {
					fmt.Fprintf(g.io.Out, "ACLs for principal `%s`\n", p)
				}
				for _, r := range sortedACLKeys(byResource) {
					printACLs(g, "Current ACLs for resource", r, byResource[r])
				}
				return nil
			})
		},
	}
	list.flags(listCmd)
	cmd.AddCommand(addCmd, removeCmd, listCmd)
	return cmd
}

// bind puts entry e on resource r.
func bind(r, e admin.ACL) admin.ACL {
	e.ResourceType, e.ResourceName, e.PatternType = r.ResourceType, r.ResourceName, r.PatternType
	return e
}

func sortedACLKeys(m map[admin.ACL][]admin.ACL) []admin.ACL {
	keys := make([]admin.ACL, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b admin.ACL) int { return strings.Compare(a.Pattern(), b.Pattern()) })
	return keys
}

func joinEntries(es []admin.ACL) string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = "\t" + e.Entry()
	}
	return strings.Join(s, "\n")
}

// printACLs prints a resource's entries as kafka-acls.sh does.
func printACLs(g *globals, what string, r admin.ACL, es []admin.ACL) {
	fmt.Fprintf(g.io.Out, "%s `%s`: \n %s \n\n", what, r.Pattern(), joinEntries(es))
}
