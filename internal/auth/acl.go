package auth

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ClusterName is the only name of the CLUSTER resource.
const ClusterName = "kafka-cluster"

// wildcard is the resource name, host and principal name that match any.
const wildcard = "*"

// ACL is one access control entry bound to a resource pattern, in the
// terms of CreateAcls.
type ACL struct {
	ResourceType kmsg.ACLResourceType
	ResourceName string
	PatternType  kmsg.ACLResourcePatternType // LITERAL or PREFIXED
	Principal    string                      // "User:alice", "User:*"
	Host         string                      // an IP address or "*"
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType // ALLOW or DENY
}

// AuthorizerConfig holds the authorizer's broker settings.
type AuthorizerConfig struct {
	// SuperUsers is super.users: principals separated by ';' that every
	// check allows.
	SuperUsers string
	// AllowEveryoneIfNoACLFound is allow.everyone.if.no.acl.found: a
	// resource that no ACL pattern matches is open to all.
	AllowEveryoneIfNoACLFound bool
}

// Authorizer decides requests with the semantics of Kafka's
// StandardAuthorizer and keeps the ACLs. It is safe for concurrent use.
// A nil *Authorizer is the broker without authorizer.class.name: it allows
// everything.
type Authorizer struct {
	superUsers   map[string]bool
	allowIfNoACL bool

	mu   sync.RWMutex // guards acls
	acls map[ACL]struct{}
}

// NewAuthorizer returns an authorizer with no ACLs.
func NewAuthorizer(cfg AuthorizerConfig) *Authorizer {
	a := &Authorizer{superUsers: map[string]bool{}, allowIfNoACL: cfg.AllowEveryoneIfNoACLFound, acls: map[ACL]struct{}{}}
	for _, p := range strings.Split(cfg.SuperUsers, ";") {
		if p = strings.TrimSpace(p); p != "" {
			a.superUsers[p] = true
		}
	}
	return a
}

// Authorize reports whether principal, connected from host (an IP address
// as net.IP.String writes it), may perform op on the named resource. Any
// matching DENY wins over any ALLOW; READ, WRITE, DELETE and ALTER allow
// DESCRIBE, ALTER_CONFIGS allows DESCRIBE_CONFIGS and ALL allows (or
// denies) everything.
func (a *Authorizer) Authorize(p Principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if a == nil || a.superUsers[p.String()] {
		return true
	}
	principal, anyUser := p.String(), User(wildcard).String()
	a.mu.RLock()
	defer a.mu.RUnlock()
	var resourceHasACLs, allowed bool
	for acl := range a.acls {
		if acl.ResourceType != rt || !patternCovers(acl, name) {
			continue
		}
		resourceHasACLs = true
		if acl.Principal != principal && acl.Principal != anyUser ||
			acl.Host != wildcard && acl.Host != host || !operationCovers(acl, op) {
			continue
		}
		if acl.Permission == kmsg.ACLPermissionTypeDeny {
			return false
		}
		allowed = true
	}
	return allowed || !resourceHasACLs && a.allowIfNoACL
}

// AuthorizeByResourceType reports whether p may perform op on at least
// one resource of type rt, as Kafka's Authorizer.authorizeByResourceType
// decides it (InitProducerId's "WRITE on any topic" for idempotence): a
// super user, or a resource open to all (allow.everyone.if.no.acl.found),
// is allowed; a DENY on the literal "*" denies; otherwise an ALLOW (exact
// operation or ALL) whose pattern no DENY literal of the same name or DENY
// prefix dominates allows. Implied operations do not count here.
func (a *Authorizer) AuthorizeByResourceType(p Principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	// Kafka checks a made-up name first so that super users and the
	// no-ACL rule are honoured whatever the ACLs say.
	if a.Authorize(p, host, op, rt, "hardcode") {
		return true
	}
	principal, anyUser := p.String(), User(wildcard).String()
	a.mu.RLock()
	defer a.mu.RUnlock()
	var allows []ACL
	denyLiteral, denyPrefix := map[string]bool{}, map[string]bool{}
	for acl := range a.acls {
		if acl.ResourceType != rt || acl.Principal != principal && acl.Principal != anyUser ||
			acl.Host != wildcard && acl.Host != host || acl.Operation != op && acl.Operation != kmsg.ACLOperationAll {
			continue
		}
		literal := acl.PatternType == kmsg.ACLResourcePatternTypeLiteral
		switch {
		case acl.Permission == kmsg.ACLPermissionTypeDeny && literal && acl.ResourceName == wildcard:
			return false
		case acl.Permission == kmsg.ACLPermissionTypeDeny && literal:
			denyLiteral[acl.ResourceName] = true
		case acl.Permission == kmsg.ACLPermissionTypeDeny:
			denyPrefix[acl.ResourceName] = true
		case literal && acl.ResourceName == wildcard:
			return true
		default:
			allows = append(allows, acl)
		}
	}
	for _, acl := range allows {
		if acl.PatternType == kmsg.ACLResourcePatternTypeLiteral && denyLiteral[acl.ResourceName] {
			continue
		}
		dominated := false
		for i := 1; i <= len(acl.ResourceName) && !dominated; i++ {
			dominated = denyPrefix[acl.ResourceName[:i]]
		}
		if !dominated {
			return true
		}
	}
	return false
}

// ParsePrincipal reads a principal written "Type:name" (KafkaPrincipal's
// form); a string without a colon is a User name.
func ParsePrincipal(s string) Principal {
	if typ, name, ok := strings.Cut(s, ":"); ok {
		return Principal{typ, name}
	}
	return User(s)
}

// ACLs returns every ACL, sorted: the authorizer's durable state.
func (a *Authorizer) ACLs() []ACL {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.matching(aclFilter{resourceType: kmsg.ACLResourceTypeAny, patternType: kmsg.ACLResourcePatternTypeAny,
		operation: kmsg.ACLOperationAny, permission: kmsg.ACLPermissionTypeAny})
}

// SetACLs replaces every ACL with acls (a start-up replay, or undoing a
// change that could not be stored).
func (a *Authorizer) SetACLs(acls []ACL) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acls = make(map[ACL]struct{}, len(acls))
	for _, acl := range acls {
		a.acls[acl] = struct{}{}
	}
}

// patternCovers reports whether acl's resource pattern covers name.
func patternCovers(acl ACL, name string) bool {
	if acl.PatternType == kmsg.ACLResourcePatternTypePrefixed {
		return strings.HasPrefix(name, acl.ResourceName)
	}
	return acl.ResourceName == name || acl.ResourceName == wildcard
}

// operationCovers reports whether acl's operation covers op; implied
// operations count for ALLOW entries only, so a DENY READ leaves DESCRIBE
// alone.
func operationCovers(acl ACL, op kmsg.ACLOperation) bool {
	if acl.Operation == kmsg.ACLOperationAll || acl.Operation == op {
		return true
	}
	if acl.Permission != kmsg.ACLPermissionTypeAllow {
		return false
	}
	switch op {
	case kmsg.ACLOperationDescribe:
		switch acl.Operation {
		case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			return true
		}
	case kmsg.ACLOperationDescribeConfigs:
		return acl.Operation == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// supportedOperations are the operations each resource type knows, as
// Kafka lists them for the authorized-operations fields.
var supportedOperations = map[kmsg.ACLResourceType][]kmsg.ACLOperation{
	kmsg.ACLResourceTypeTopic: {kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate,
		kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs},
	kmsg.ACLResourceTypeGroup: {kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete},
	kmsg.ACLResourceTypeCluster: {kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite,
		kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe},
	kmsg.ACLResourceTypeTransactionalId: {kmsg.ACLOperationDescribe, kmsg.ACLOperationWrite},
	kmsg.ACLResourceTypeDelegationToken: {kmsg.ACLOperationDescribe},
	kmsg.ACLResourceTypeUser:            {kmsg.ACLOperationCreateTokens, kmsg.ACLOperationDescribeTokens},
}

// AuthorizedOperations is the bit field of Metadata's, DescribeCluster's
// and DescribeGroups' authorized-operations fields: bit i is set when
// operation code i is allowed on the resource. A nil Authorizer sets every
// operation the resource type supports. (Callers put math.MinInt32 when the
// request did not ask for the field.)
func (a *Authorizer) AuthorizedOperations(p Principal, host string, rt kmsg.ACLResourceType, name string) int32 {
	var bits int32
	for _, op := range supportedOperations[rt] {
		if a.Authorize(p, host, op, rt, name) {
			bits |= 1 << op
		}
	}
	return bits
}

// validateACL returns why CreateAcls refuses acl, as Kafka's AclApis and
// AclControlManager check it, or "".
func validateACL(acl ACL) string {
	switch {
	case acl.ResourceType < kmsg.ACLResourceTypeTopic || acl.ResourceType > kmsg.ACLResourceTypeUser:
		return fmt.Sprintf("Invalid resourceType %v", acl.ResourceType)
	case acl.PatternType != kmsg.ACLResourcePatternTypeLiteral && acl.PatternType != kmsg.ACLResourcePatternTypePrefixed:
		return fmt.Sprintf("Invalid patternType %v", acl.PatternType)
	case acl.Operation < kmsg.ACLOperationAll || acl.Operation > kmsg.ACLOperationDescribeTokens:
		return fmt.Sprintf("Invalid operation %v", acl.Operation)
	case acl.Permission != kmsg.ACLPermissionTypeAllow && acl.Permission != kmsg.ACLPermissionTypeDeny:
		return fmt.Sprintf("Invalid permissionType %v", acl.Permission)
	case acl.ResourceName == "":
		return "Invalid empty resource name"
	case acl.ResourceType == kmsg.ACLResourceTypeCluster && acl.ResourceName != ClusterName:
		return "The only valid name for the CLUSTER resource is " + ClusterName
	case acl.Host == "":
		return "Invalid empty host"
	}
	if typ, name, ok := strings.Cut(acl.Principal, ":"); !ok || typ == "" || name == "" {
		return fmt.Sprintf("Could not parse principal from `%s` (no colon is present separating the principal type from the principal name)", acl.Principal)
	}
	return ""
}

// CreateACLs answers CreateAcls: each creation is validated on its own
// (INVALID_REQUEST with Kafka's message) and the valid ones are added;
// adding an existing ACL is a no-op. Authorization (ALTER on the cluster)
// is the caller's.
func (a *Authorizer) CreateACLs(req *kmsg.CreateACLsRequest) *kmsg.CreateACLsResponse {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range req.Creations {
		acl := ACL{c.ResourceType, c.ResourceName, c.ResourcePatternType, c.Principal, c.Host, c.Operation, c.PermissionType}
		r := kmsg.NewCreateACLsResponseResult()
		if msg := validateACL(acl); msg != "" {
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(msg)
		} else {
			a.acls[acl] = struct{}{}
		}
		resp.Results = append(resp.Results, r)
	}
	return resp
}

// aclFilter is the filter of DescribeAcls and of one DeleteAcls entry.
type aclFilter struct {
	resourceType kmsg.ACLResourceType
	name         *string
	patternType  kmsg.ACLResourcePatternType
	principal    *string
	host         *string
	operation    kmsg.ACLOperation
	permission   kmsg.ACLPermissionType
}

// unknown reports whether the filter has an UNKNOWN (or out of range)
// element, which Kafka refuses with INVALID_REQUEST.
func (f aclFilter) unknown() bool {
	return f.resourceType < kmsg.ACLResourceTypeAny || f.resourceType > kmsg.ACLResourceTypeUser ||
		f.patternType < kmsg.ACLResourcePatternTypeAny || f.patternType > kmsg.ACLResourcePatternTypePrefixed ||
		f.operation < kmsg.ACLOperationAny || f.operation > kmsg.ACLOperationDescribeTokens ||
		f.permission < kmsg.ACLPermissionTypeAny || f.permission > kmsg.ACLPermissionTypeAllow
}

// matches is Kafka's AclBindingFilter.matches: ANY and null match all;
// MATCH with a name matches the literal name, the literal "*" and every
// prefix pattern the name starts with.
func (f aclFilter) matches(acl ACL) bool {
	if f.resourceType != kmsg.ACLResourceTypeAny && f.resourceType != acl.ResourceType ||
		f.patternType != kmsg.ACLResourcePatternTypeAny && f.patternType != kmsg.ACLResourcePatternTypeMatch && f.patternType != acl.PatternType ||
		f.principal != nil && *f.principal != acl.Principal ||
		f.host != nil && *f.host != acl.Host ||
		f.operation != kmsg.ACLOperationAny && f.operation != acl.Operation ||
		f.permission != kmsg.ACLPermissionTypeAny && f.permission != acl.Permission {
		return false
	}
	switch {
	case f.name == nil:
		return true
	case f.patternType == kmsg.ACLResourcePatternTypeMatch:
		return patternCovers(acl, *f.name)
	}
	return *f.name == acl.ResourceName
}

// matching returns the ACLs f matches, sorted; a.mu is held.
func (a *Authorizer) matching(f aclFilter) []ACL {
	var out []ACL
	for acl := range a.acls {
		if f.matches(acl) {
			out = append(out, acl)
		}
	}
	slices.SortFunc(out, func(x, y ACL) int {
		return cmp.Or(cmp.Compare(x.ResourceType, y.ResourceType), cmp.Compare(x.ResourceName, y.ResourceName),
			cmp.Compare(x.PatternType, y.PatternType), cmp.Compare(x.Principal, y.Principal),
			cmp.Compare(x.Host, y.Host), cmp.Compare(x.Operation, y.Operation), cmp.Compare(x.Permission, y.Permission))
	})
	return out
}

// DescribeACLs answers DescribeAcls with the matching ACLs grouped by
// resource pattern. Authorization (DESCRIBE on the cluster) is the
// caller's.
func (a *Authorizer) DescribeACLs(req *kmsg.DescribeACLsRequest) *kmsg.DescribeACLsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	f := aclFilter{req.ResourceType, req.ResourceName, req.ResourcePatternType, req.Principal, req.Host, req.Operation, req.PermissionType}
	if f.unknown() {
		resp.ErrorCode = kerr.InvalidRequest.Code
		resp.ErrorMessage = kmsg.StringPtr("DescribeAclsRequest contains UNKNOWN elements")
		return resp
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, acl := range a.matching(f) {
		n := len(resp.Resources)
		if n == 0 || resp.Resources[n-1].ResourceType != acl.ResourceType ||
			resp.Resources[n-1].ResourceName != acl.ResourceName || resp.Resources[n-1].ResourcePatternType != acl.PatternType {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType, r.ResourceName, r.ResourcePatternType = acl.ResourceType, acl.ResourceName, acl.PatternType
			resp.Resources = append(resp.Resources, r)
			n++
		}
		e := kmsg.NewDescribeACLsResponseResourceACL()
		e.Principal, e.Host, e.Operation, e.PermissionType = acl.Principal, acl.Host, acl.Operation, acl.Permission
		resp.Resources[n-1].ACLs = append(resp.Resources[n-1].ACLs, e)
	}
	return resp
}

// DeleteACLs answers DeleteAcls: each filter removes the ACLs it matches
// and lists them (an ACL matched by two filters is listed by the first). A
// filter with UNKNOWN elements fails the request, as Kafka's request
// validation does. Authorization (ALTER on the cluster) is the caller's.
func (a *Authorizer) DeleteACLs(req *kmsg.DeleteACLsRequest) *kmsg.DeleteACLsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	filters := make([]aclFilter, len(req.Filters))
	invalid := false
	for i, rf := range req.Filters {
		filters[i] = aclFilter{rf.ResourceType, rf.ResourceName, rf.ResourcePatternType, rf.Principal, rf.Host, rf.Operation, rf.PermissionType}
		invalid = invalid || filters[i].unknown()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range filters {
		r := kmsg.NewDeleteACLsResponseResult()
		if invalid {
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr("DeleteAclsRequest contains UNKNOWN elements")
			resp.Results = append(resp.Results, r)
			continue
		}
		for _, acl := range a.matching(f) {
			delete(a.acls, acl)
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = acl.ResourceType, acl.ResourceName, acl.PatternType
			m.Principal, m.Host, m.Operation, m.PermissionType = acl.Principal, acl.Host, acl.Operation, acl.Permission
			r.MatchingACLs = append(r.MatchingACLs, m)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp
}
