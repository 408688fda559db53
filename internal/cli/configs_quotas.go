package cli

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kafkit/kafkit/admin"
)

// quotaEntityTypes maps kafka-configs.sh's entity types to client quota
// entity types.
var quotaEntityTypes = map[string]string{"users": "user", "clients": "client-id", "ips": "ip"}

// quotaKeys are the quota configs each entity type takes.
var quotaKeys = map[string][]string{
	"users":   {"producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate"},
	"clients": {"producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate"},
	"ips":     {"connection_creation_rate"},
}

// quotaTarget is the client quota entity of a kafka-configs command:
// entity types ("users", "clients", "ips") and their names, nil for the
// default entity; on describe a missing name (named false) matches every
// entity of the type.
type quotaTarget struct {
	types []string
	names []*string
	named []bool
}

func (q *quotaTarget) add(typ string, name *string, named bool) {
	q.types, q.names, q.named = append(q.types, typ), append(q.names, name), append(q.named, named)
}

func (q quotaTarget) entity() []admin.QuotaEntityPart {
	var out []admin.QuotaEntityPart
	for i, typ := range q.types {
		out = append(out, admin.QuotaEntityPart{Type: quotaEntityTypes[typ], Name: q.names[i]})
	}
	return out
}

func (q quotaTarget) filters() []admin.QuotaFilter {
	var out []admin.QuotaFilter
	for i, typ := range q.types {
		out = append(out, admin.QuotaFilter{Type: quotaEntityTypes[typ], Name: q.names[i], Default: q.named[i] && q.names[i] == nil})
	}
	return out
}

// javaDouble formats v as Java's Double.toString, which kafka-configs.sh
// prints quota values with: 1024.0, 1.5, 1.048576E7.
func javaDouble(v float64) string {
	if a := math.Abs(v); a != 0 && (a < 1e-3 || a >= 1e7) {
		s := strconv.FormatFloat(v, 'E', -1, 64)
		mant, exp, _ := strings.Cut(s, "E")
		if !strings.Contains(mant, ".") {
			mant += ".0"
		}
		n, _ := strconv.Atoi(exp)
		return mant + "E" + strconv.Itoa(n)
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// describeQuotas prints kafka-configs.sh's "Quota configs for ... are ..."
// line for each matching entity.
func (g *globals) describeQuotas(cmd *cobra.Command, t quotaTarget) error {
	return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
		quotas, err := adm.DescribeClientQuotas(ctx, true, t.filters()...)
		if err != nil {
			return err
		}
		if g.output == "json" {
			return printJSON(g.io.Out, quotas)
		}
		for _, q := range quotas {
			var vals []string
			for _, k := range slices.Sorted(maps.Keys(q.Values)) {
				vals = append(vals, k+"="+javaDouble(q.Values[k]))
			}
			fmt.Fprintf(g.io.Out, "Quota configs for %s are %s\n", q, strings.Join(vals, ", "))
		}
		return nil
	})
}

// alterQuotas is kafka-configs.sh --alter for users, clients and ips.
func (g *globals) alterQuotas(cmd *cobra.Command, t quotaTarget, set map[string]string, deletes []string) error {
	head := t.types[0]
	what := map[string]string{"users": "quota and SCRAM credential", "clients": "quota", "ips": "connection quota"}[head]
	for _, c := range []struct {
		verb string
		keys []string
	}{{"added", sortedKeys(set)}, {"deleted", deletes}} {
		var unexpected []string
		for _, k := range c.keys {
			if !slices.Contains(quotaKeys[head], k) {
				unexpected = append(unexpected, k)
			}
		}
		if len(unexpected) > 0 {
			return fmt.Errorf("Only %s configs can be %s for '%s' using --bootstrap-server. Unexpected config names: %s", what, c.verb, head, strings.Join(unexpected, ","))
		}
	}
	values := map[string]float64{}
	for k, v := range set {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("Cannot parse quota configuration value for %s: %s", k, v)
		}
		values[k] = f
	}
	for i := range t.named {
		if !t.named[i] {
			return fmt.Errorf("an entity name or --entity-default is required for --entity-type %s", t.types[i])
		}
	}
	return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
		current, err := adm.DescribeClientQuotas(ctx, true, t.filters()...)
		if err != nil {
			return err
		}
		current0 := func(qs []admin.ClientQuota) map[string]float64 {
			if len(qs) == 0 {
				return nil
			}
			return qs[0].Values
		}
		var missing []string
		for _, k := range deletes {
			if _, ok := current0(current)[k]; !ok {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("Invalid config(s): %s", strings.Join(missing, ","))
		}
		if err := adm.AlterClientQuotas(ctx, t.entity(), values, deletes...); err != nil {
			return err
		}
		if t.names[0] == nil {
			_, err = fmt.Fprintf(g.io.Out, "Completed updating default config for %s in the cluster.\n", head)
		} else {
			_, err = fmt.Fprintf(g.io.Out, "Completed updating config for %s %s.\n", strings.TrimSuffix(head, "s"), *t.names[0])
		}
		return err
	})
}

// deleteKeys splits --delete-config values (k[,k2], repeatable).
func deleteKeys(deletes []string) []string {
	var out []string
	for _, d := range deletes {
		for k := range strings.SplitSeq(d, ",") {
			if k = strings.TrimSpace(k); k != "" {
				out = append(out, k)
			}
		}
	}
	return out
}
