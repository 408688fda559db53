package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ACL is one access control entry bound to a resource pattern, as Kafka's
// AclBinding: Principal (User:alice) may or may not (Permission) do
// Operation from Host on the resources that ResourceName and PatternType
// match.
type ACL struct {
	ResourceType kmsg.ACLResourceType
	ResourceName string
	PatternType  kmsg.ACLResourcePatternType
	Principal    string
	Host         string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// Pattern prints the ACL's resource pattern as Kafka's ResourcePattern does.
func (a ACL) Pattern() string {
	return fmt.Sprintf("ResourcePattern(resourceType=%s, name=%s, patternType=%s)", a.ResourceType, a.ResourceName, a.PatternType)
}

// Entry prints the ACL's entry as Kafka's AccessControlEntry does.
func (a ACL) Entry() string {
	return fmt.Sprintf("(principal=%s, host=%s, operation=%s, permissionType=%s)", a.Principal, a.Host, a.Operation, a.Permission)
}

// ACLFilter selects ACLs, as Kafka's AclBindingFilter: a zero type, pattern
// type, operation or permission is ANY, an empty name, principal or host
// matches every one. PatternType MATCH also selects the wildcard and
// prefixed patterns that cover ResourceName.
type ACLFilter struct {
	ResourceType kmsg.ACLResourceType
	ResourceName string
	PatternType  kmsg.ACLResourcePatternType
	Principal    string
	Host         string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// wire is the filter as requests carry it: ANY for zero enums, null for
// empty strings.
func (f ACLFilter) wire() (kmsg.ACLResourceType, *string, kmsg.ACLResourcePatternType, *string, *string, kmsg.ACLOperation, kmsg.ACLPermissionType) {
	return orAny(f.ResourceType), nullable(f.ResourceName), orAny(f.PatternType), nullable(f.Principal), nullable(f.Host), orAny(f.Operation), orAny(f.Permission)
}

func orAny[T ~int8](v T) T {
	if v == 0 {
		return 1 // ANY in every ACL enum
	}
	return v
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CreateACLs creates acls; the error joins each one the broker refused.
func (c *Client) CreateACLs(ctx context.Context, acls ...ACL) error {
	req := kmsg.NewPtrCreateACLsRequest()
	for _, a := range acls {
		cr := kmsg.NewCreateACLsRequestCreation()
		cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = a.ResourceType, a.ResourceName, a.PatternType
		cr.Principal, cr.Host, cr.Operation, cr.PermissionType = a.Principal, a.Host, a.Operation, a.Permission
		req.Creations = append(req.Creations, cr)
	}
	resp, err := ask(ctx, c, c.cl.Request, "create acls", req, func(*kmsg.CreateACLsResponse) (int16, *string) { return 0, nil })
	if err != nil {
		return err
	}
	var errs []error
	for i, r := range resp.Results {
		if i < len(acls) {
			errs = append(errs, kafkaErr("create acl", acls[i].Pattern()+" "+acls[i].Entry(), r.ErrorCode, r.ErrorMessage))
		}
	}
	return errors.Join(errs...)
}

// DescribeACLs lists the ACLs that f selects.
func (c *Client) DescribeACLs(ctx context.Context, f ACLFilter) ([]ACL, error) {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourceName, req.ResourcePatternType, req.Principal, req.Host, req.Operation, req.PermissionType = f.wire()
	resp, err := ask(ctx, c, c.cl.Request, "describe acls", req, func(r *kmsg.DescribeACLsResponse) (int16, *string) { return r.ErrorCode, r.ErrorMessage })
	if err != nil {
		return nil, err
	}
	var out []ACL
	for _, r := range resp.Resources {
		for _, a := range r.ACLs {
			out = append(out, ACL{r.ResourceType, r.ResourceName, r.ResourcePatternType, a.Principal, a.Host, a.Operation, a.PermissionType})
		}
	}
	return out, nil
}

// DeleteACLs deletes the ACLs that any of filters selects and returns them.
func (c *Client) DeleteACLs(ctx context.Context, filters ...ACLFilter) ([]ACL, error) {
	req := kmsg.NewPtrDeleteACLsRequest()
	for _, f := range filters {
		rf := kmsg.NewDeleteACLsRequestFilter()
		rf.ResourceType, rf.ResourceName, rf.ResourcePatternType, rf.Principal, rf.Host, rf.Operation, rf.PermissionType = f.wire()
		req.Filters = append(req.Filters, rf)
	}
	resp, err := ask(ctx, c, c.cl.Request, "delete acls", req, func(*kmsg.DeleteACLsResponse) (int16, *string) { return 0, nil })
	if err != nil {
		return nil, err
	}
	var (
		out  []ACL
		errs []error
	)
	for _, r := range resp.Results {
		if err := kafkaErr("delete acls", "cluster", r.ErrorCode, r.ErrorMessage); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, m := range r.MatchingACLs {
			if err := kafkaErr("delete acl", m.ResourceName, m.ErrorCode, m.ErrorMessage); err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, ACL{m.ResourceType, m.ResourceName, m.ResourcePatternType, m.Principal, m.Host, m.Operation, m.PermissionType})
		}
	}
	return out, errors.Join(errs...)
}
