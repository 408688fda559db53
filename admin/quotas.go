package admin

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// QuotaEntityPart is one part of a client quota entity: Type "user",
// "client-id" or "ip", and its Name; a nil Name is that type's default
// entity (kafka-configs.sh's --entity-default).
type QuotaEntityPart struct {
	Type string
	Name *string
}

// QuotaFilter selects entities by one type: by Name, the Default entity,
// or (neither) any entity that has the type.
type QuotaFilter struct {
	Type    string
	Name    *string
	Default bool
}

// ClientQuota is one entity's quotas (producer_byte_rate,
// consumer_byte_rate, request_percentage, controller_mutation_rate,
// connection_creation_rate).
type ClientQuota struct {
	Entity []QuotaEntityPart
	Values map[string]float64
}

// String is the entity as kafka-configs.sh names it: "user-principal
// 'alice', client-id 'app'", "the default user-principal".
func (q ClientQuota) String() string {
	var parts []string
	for _, p := range q.Entity {
		typ := map[string]string{"user": "user-principal"}[p.Type]
		if typ == "" {
			typ = p.Type
		}
		if p.Name == nil {
			parts = append(parts, "the default "+typ)
		} else {
			parts = append(parts, typ+" '"+*p.Name+"'")
		}
	}
	return strings.Join(parts, ", ")
}

// DescribeClientQuotas lists the quotas of the entities every filter
// matches; strict leaves out entities with types no filter names
// (ClientQuotaFilter.containsOnly).
func (c *Client) DescribeClientQuotas(ctx context.Context, strict bool, filters ...QuotaFilter) ([]ClientQuota, error) {
	req := kmsg.NewPtrDescribeClientQuotasRequest()
	req.Strict = strict
	for _, f := range filters {
		comp := kmsg.NewDescribeClientQuotasRequestComponent()
		comp.EntityType, comp.Match = f.Type, f.Name
		switch {
		case f.Name != nil:
			comp.MatchType = kmsg.QuotasMatchTypeExact
		case f.Default:
			comp.MatchType = kmsg.QuotasMatchTypeDefault
		default:
			comp.MatchType = kmsg.QuotasMatchTypeAny
		}
		req.Components = append(req.Components, comp)
	}
	resp, err := ask(ctx, c, c.cl.Request, "describe client quotas", req, func(r *kmsg.DescribeClientQuotasResponse) (int16, *string) { return r.ErrorCode, r.ErrorMessage })
	if err != nil {
		return nil, err
	}
	var out []ClientQuota
	for _, e := range resp.Entries {
		q := ClientQuota{Values: map[string]float64{}}
		for _, ent := range e.Entity {
			q.Entity = append(q.Entity, QuotaEntityPart{ent.Type, ent.Name})
		}
		for _, v := range e.Values {
			q.Values[v.Key] = v.Value
		}
		out = append(out, q)
	}
	return out, nil
}

// AlterClientQuotas sets the quotas in set and removes those in remove on
// one entity.
func (c *Client) AlterClientQuotas(ctx context.Context, entity []QuotaEntityPart, set map[string]float64, remove ...string) error {
	req := kmsg.NewPtrAlterClientQuotasRequest()
	e := kmsg.NewAlterClientQuotasRequestEntry()
	for _, p := range entity {
		e.Entity = append(e.Entity, kmsg.AlterClientQuotasRequestEntryEntity{Type: p.Type, Name: p.Name})
	}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		e.Ops = append(e.Ops, kmsg.AlterClientQuotasRequestEntryOp{Key: k, Value: set[k]})
	}
	for _, k := range remove {
		e.Ops = append(e.Ops, kmsg.AlterClientQuotasRequestEntryOp{Key: k, Remove: true})
	}
	req.Entries = append(req.Entries, e)
	resp, err := ask(ctx, c, c.cl.Request, "alter client quotas", req, func(*kmsg.AlterClientQuotasResponse) (int16, *string) { return 0, nil })
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range resp.Entries {
		errs = append(errs, kafkaErr("alter client quotas", ClientQuota{Entity: entity}.String(), r.ErrorCode, r.ErrorMessage))
	}
	return errors.Join(errs...)
}
