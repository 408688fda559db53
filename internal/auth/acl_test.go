package auth

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	topic   = kmsg.ACLResourceTypeTopic
	group   = kmsg.ACLResourceTypeGroup
	cluster = kmsg.ACLResourceTypeCluster
	literal = kmsg.ACLResourcePatternTypeLiteral
	prefix  = kmsg.ACLResourcePatternTypePrefixed
	allow   = kmsg.ACLPermissionTypeAllow
	deny    = kmsg.ACLPermissionTypeDeny
)

func creation(acl ACL) kmsg.CreateACLsRequestCreation {
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourceName, c.ResourcePatternType = acl.ResourceType, acl.ResourceName, acl.PatternType
	c.Principal, c.Host, c.Operation, c.PermissionType = acl.Principal, acl.Host, acl.Operation, acl.Permission
	return c
}

// authorizerWith returns an authorizer holding acls, failing the test if
// CreateAcls refuses one.
func authorizerWith(t *testing.T, cfg AuthorizerConfig, acls ...ACL) *Authorizer {
	t.Helper()
	a := NewAuthorizer(cfg)
	req := kmsg.NewPtrCreateACLsRequest()
	for _, acl := range acls {
		req.Creations = append(req.Creations, creation(acl))
	}
	for i, r := range a.CreateACLs(req).Results {
		if r.ErrorCode != 0 {
			t.Fatalf("creation %d: %v %v", i, kerr.ErrorForCode(r.ErrorCode), *r.ErrorMessage)
		}
	}
	return a
}

func TestAuthorize(t *testing.T) {
	alice, bob := User("alice"), User("bob")
	a := authorizerWith(t, AuthorizerConfig{SuperUsers: " User:admin ;User:ops"},
		ACL{topic, "a", literal, "User:alice", "*", kmsg.ACLOperationWrite, allow},
		ACL{group, "g", literal, "User:alice", "*", kmsg.ACLOperationRead, allow},
		ACL{topic, "pre-", prefix, "User:alice", "*", kmsg.ACLOperationRead, allow},
		ACL{topic, "pre-secret", literal, "User:alice", "*", kmsg.ACLOperationRead, deny},
		ACL{topic, "open", literal, "User:*", "*", kmsg.ACLOperationAll, allow},
		ACL{topic, "open", literal, "User:bob", "*", kmsg.ACLOperationWrite, deny},
		ACL{topic, "*", literal, "User:bob", "10.0.0.1", kmsg.ACLOperationRead, allow},
		ACL{topic, "cfg", literal, "User:alice", "*", kmsg.ACLOperationAlterConfigs, allow},
		ACL{topic, "nodesc", literal, "User:alice", "*", kmsg.ACLOperationRead, deny},
		ACL{topic, "nodesc", literal, "User:alice", "*", kmsg.ACLOperationDescribe, allow},
		ACL{topic, "nothing", literal, "User:alice", "*", kmsg.ACLOperationAll, deny},
		ACL{topic, "nothing", literal, "User:alice", "*", kmsg.ACLOperationAll, allow},
	)
	for _, tc := range []struct {
		name string
		p    Principal
		host string
		op   kmsg.ACLOperation
		rt   kmsg.ACLResourceType
		res  string
		want bool
	}{
		{"literal allow", alice, "1.2.3.4", kmsg.ACLOperationWrite, topic, "a", true},
		{"other topic", alice, "1.2.3.4", kmsg.ACLOperationWrite, topic, "b", false},
		{"other op", alice, "1.2.3.4", kmsg.ACLOperationRead, topic, "a", false},
		{"write implies describe", alice, "1.2.3.4", kmsg.ACLOperationDescribe, topic, "a", true},
		{"write does not imply describe configs", alice, "1.2.3.4", kmsg.ACLOperationDescribeConfigs, topic, "a", false},
		{"alter configs implies describe configs", alice, "1.2.3.4", kmsg.ACLOperationDescribeConfigs, topic, "cfg", true},
		{"read group", alice, "1.2.3.4", kmsg.ACLOperationRead, group, "g", true},
		{"other group", alice, "1.2.3.4", kmsg.ACLOperationRead, group, "h", false},
		{"read group implies describe", alice, "1.2.3.4", kmsg.ACLOperationDescribe, group, "g", true},
		{"group acl is not topic acl", alice, "1.2.3.4", kmsg.ACLOperationRead, topic, "g", false},
		{"prefix covers", alice, "1.2.3.4", kmsg.ACLOperationRead, topic, "pre-x", true},
		{"prefix covers itself", alice, "1.2.3.4", kmsg.ACLOperationRead, topic, "pre-", true},
		{"prefix does not cover shorter", alice, "1.2.3.4", kmsg.ACLOperationRead, topic, "pre", false},
		{"deny beats prefix allow", alice, "1.2.3.4", kmsg.ACLOperationRead, topic, "pre-secret", false},
		{"deny read leaves implied describe", alice, "1.2.3.4", kmsg.ACLOperationDescribe, topic, "pre-secret", true},
		{"deny read does not stop explicit describe", alice, "1.2.3.4", kmsg.ACLOperationDescribe, topic, "nodesc", true},
		{"wildcard principal all", alice, "1.2.3.4", kmsg.ACLOperationDelete, topic, "open", true},
		{"deny beats wildcard allow", bob, "1.2.3.4", kmsg.ACLOperationWrite, topic, "open", false},
		{"wildcard principal for bob", bob, "1.2.3.4", kmsg.ACLOperationRead, topic, "open", true},
		{"wildcard resource on host", bob, "10.0.0.1", kmsg.ACLOperationRead, topic, "anything", true},
		{"wildcard resource other host", bob, "10.0.0.2", kmsg.ACLOperationRead, topic, "anything", false},
		{"deny all beats allow all", alice, "1.2.3.4", kmsg.ACLOperationDescribe, topic, "nothing", false},
		{"super user", User("admin"), "1.2.3.4", kmsg.ACLOperationAlter, cluster, ClusterName, true},
		{"second super user", User("ops"), "1.2.3.4", kmsg.ACLOperationWrite, topic, "nothing", true},
		{"super users are principals, not names", Principal{"Group", "admin"}, "1.2.3.4", kmsg.ACLOperationWrite, topic, "b", false},
		{"no acl, default deny", alice, "1.2.3.4", kmsg.ACLOperationCreate, cluster, ClusterName, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Authorize(tc.p, tc.host, tc.op, tc.rt, tc.res); got != tc.want {
				t.Fatalf("Authorize = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAllowEveryoneIfNoACLFound(t *testing.T) {
	a := authorizerWith(t, AuthorizerConfig{AllowEveryoneIfNoACLFound: true},
		ACL{topic, "x", prefix, "User:bob", "*", kmsg.ACLOperationRead, allow})
	for _, tc := range []struct {
		res  string
		want bool
	}{
		{"free", true}, // no ACL matches the resource
		{"xy", false},  // bob's prefix ACL covers it, so alice is denied
		{"xyz", false},
	} {
		if got := a.Authorize(User("alice"), "h", kmsg.ACLOperationWrite, topic, tc.res); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.res, got, tc.want)
		}
	}
	var none *Authorizer
	if !none.Authorize(User("x"), "h", kmsg.ACLOperationAlter, cluster, ClusterName) {
		t.Error("nil authorizer denied")
	}
}

func TestAuthorizedOperations(t *testing.T) {
	a := authorizerWith(t, AuthorizerConfig{},
		ACL{topic, "t", literal, "User:alice", "*", kmsg.ACLOperationWrite, allow},
		ACL{topic, "t", literal, "User:alice", "*", kmsg.ACLOperationAlterConfigs, allow},
		ACL{group, "g", literal, "User:alice", "*", kmsg.ACLOperationAll, allow})
	for _, tc := range []struct {
		az   *Authorizer
		rt   kmsg.ACLResourceType
		name string
		want int32
	}{
		{a, topic, "t", 1<<4 | 1<<8 | 1<<10 | 1<<11},
		{a, group, "g", 1<<3 | 1<<6 | 1<<8},
		{a, cluster, ClusterName, 0},
		{nil, cluster, ClusterName, 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12},
		{nil, kmsg.ACLResourceTypeTransactionalId, "tx", 1<<4 | 1<<8},
	} {
		if got := tc.az.AuthorizedOperations(User("alice"), "h", tc.rt, tc.name); got != tc.want {
			t.Errorf("%v %s: %b, want %b", tc.rt, tc.name, got, tc.want)
		}
	}
}

func TestCreateACLsValidation(t *testing.T) {
	valid := ACL{topic, "t", literal, "User:alice", "*", kmsg.ACLOperationRead, allow}
	for _, tc := range []struct {
		name   string
		change func(*ACL)
		msg    string // "" for valid
	}{
		{"valid", func(*ACL) {}, ""},
		{"prefixed", func(a *ACL) { a.PatternType = prefix }, ""},
		{"match pattern", func(a *ACL) { a.PatternType = kmsg.ACLResourcePatternTypeMatch }, "Invalid patternType MATCH"},
		{"any pattern", func(a *ACL) { a.PatternType = kmsg.ACLResourcePatternTypeAny }, "Invalid patternType ANY"},
		{"any resource", func(a *ACL) { a.ResourceType = kmsg.ACLResourceTypeAny }, "Invalid resourceType ANY"},
		{"any operation", func(a *ACL) { a.Operation = kmsg.ACLOperationAny }, "Invalid operation ANY"},
		{"any permission", func(a *ACL) { a.Permission = kmsg.ACLPermissionTypeAny }, "Invalid permissionType ANY"},
		{"empty name", func(a *ACL) { a.ResourceName = "" }, "Invalid empty resource name"},
		{"cluster name", func(a *ACL) { a.ResourceType = cluster }, "The only valid name for the CLUSTER resource is kafka-cluster"},
		{"bad principal", func(a *ACL) { a.Principal = "alice" },
			"Could not parse principal from `alice` (no colon is present separating the principal type from the principal name)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acl := valid
			tc.change(&acl)
			a := NewAuthorizer(AuthorizerConfig{})
			req := kmsg.NewPtrCreateACLsRequest()
			req.Creations = []kmsg.CreateACLsRequestCreation{creation(acl), creation(acl)}
			res := a.CreateACLs(req).Results
			if len(res) != 2 {
				t.Fatal(res)
			}
			if tc.msg == "" {
				if res[0].ErrorCode != 0 || len(a.acls) != 1 {
					t.Fatalf("%+v, %d acls", res[0], len(a.acls))
				}
				return
			}
			if res[0].ErrorCode != kerr.InvalidRequest.Code || *res[0].ErrorMessage != tc.msg || len(a.acls) != 0 {
				t.Fatalf("%+v, %d acls", res[0], len(a.acls))
			}
		})
	}
}

func TestDescribeAndDeleteACLs(t *testing.T) {
	acls := []ACL{
		{topic, "foo", literal, "User:alice", "*", kmsg.ACLOperationRead, allow},
		{topic, "*", literal, "User:bob", "*", kmsg.ACLOperationRead, allow},
		{topic, "fo", prefix, "User:alice", "*", kmsg.ACLOperationWrite, deny},
		{topic, "foobar", prefix, "User:alice", "*", kmsg.ACLOperationWrite, allow},
		{topic, "bar", literal, "User:alice", "1.1.1.1", kmsg.ACLOperationRead, allow},
		{group, "foo", literal, "User:alice", "*", kmsg.ACLOperationRead, allow},
	}
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name   string
		filter aclFilter
		want   []int // indexes into acls, in sorted order
	}{
		{"all", aclFilter{kmsg.ACLResourceTypeAny, nil, kmsg.ACLResourcePatternTypeAny, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny}, []int{1, 4, 2, 0, 3, 5}},
		{"match foo", aclFilter{topic, str("foo"), kmsg.ACLResourcePatternTypeMatch, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny}, []int{1, 2, 0}},
		{"any foo is exact name", aclFilter{kmsg.ACLResourceTypeAny, str("foo"), kmsg.ACLResourcePatternTypeAny, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny}, []int{0, 5}},
		{"literal foo", aclFilter{topic, str("foo"), literal, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny}, []int{0}},
		{"prefixed only", aclFilter{topic, nil, prefix, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny}, []int{2, 3}},
		{"principal host op permission", aclFilter{kmsg.ACLResourceTypeAny, nil, kmsg.ACLResourcePatternTypeAny, str("User:alice"), str("1.1.1.1"), kmsg.ACLOperationRead, allow}, []int{4}},
		{"deny only", aclFilter{kmsg.ACLResourceTypeAny, nil, kmsg.ACLResourcePatternTypeAny, nil, nil, kmsg.ACLOperationAny, deny}, []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := authorizerWith(t, AuthorizerConfig{}, acls...)
			f := tc.filter
			dreq := kmsg.NewPtrDescribeACLsRequest()
			dreq.ResourceType, dreq.ResourceName, dreq.ResourcePatternType = f.resourceType, f.name, f.patternType
			dreq.Principal, dreq.Host, dreq.Operation, dreq.PermissionType = f.principal, f.host, f.operation, f.permission
			dresp := a.DescribeACLs(dreq)
			var got []ACL
			for _, r := range dresp.Resources {
				for _, e := range r.ACLs {
					got = append(got, ACL{r.ResourceType, r.ResourceName, r.ResourcePatternType, e.Principal, e.Host, e.Operation, e.PermissionType})
				}
			}
			checkACLs(t, "describe", got, acls, tc.want)

			delreq := kmsg.NewPtrDeleteACLsRequest()
			df := kmsg.NewDeleteACLsRequestFilter()
			df.ResourceType, df.ResourceName, df.ResourcePatternType = f.resourceType, f.name, f.patternType
			df.Principal, df.Host, df.Operation, df.PermissionType = f.principal, f.host, f.operation, f.permission
			delreq.Filters = []kmsg.DeleteACLsRequestFilter{df, df}
			dl := a.DeleteACLs(delreq)
			got = nil
			for _, m := range dl.Results[0].MatchingACLs {
				got = append(got, ACL{m.ResourceType, m.ResourceName, m.ResourcePatternType, m.Principal, m.Host, m.Operation, m.PermissionType})
			}
			checkACLs(t, "delete", got, acls, tc.want)
			if len(dl.Results) != 2 || len(dl.Results[1].MatchingACLs) != 0 || len(a.acls) != len(acls)-len(tc.want) {
				t.Fatalf("after delete: %+v, %d left", dl.Results, len(a.acls))
			}
		})
	}
	a := authorizerWith(t, AuthorizerConfig{}, acls...)
	dreq := kmsg.NewPtrDescribeACLsRequest()
	dreq.ResourceType, dreq.ResourcePatternType, dreq.Operation, dreq.PermissionType = kmsg.ACLResourceTypeAny, 0, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	if r := a.DescribeACLs(dreq); r.ErrorCode != kerr.InvalidRequest.Code || len(r.Resources) != 0 {
		t.Fatalf("UNKNOWN pattern described: %+v", r)
	}
	delreq := kmsg.NewPtrDeleteACLsRequest()
	good, bad := kmsg.NewDeleteACLsRequestFilter(), kmsg.NewDeleteACLsRequestFilter()
	good.ResourceType, good.ResourcePatternType, good.Operation, good.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	bad = good
	bad.Operation = 0
	delreq.Filters = []kmsg.DeleteACLsRequestFilter{good, bad}
	if r := a.DeleteACLs(delreq); r.Results[0].ErrorCode != kerr.InvalidRequest.Code || len(a.acls) != len(acls) {
		t.Fatalf("UNKNOWN operation deleted: %+v", r)
	}
}

func checkACLs(t *testing.T, what string, got, acls []ACL, want []int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d acls %v, want %v", what, len(got), got, want)
	}
	for i, w := range want {
		if got[i] != acls[w] {
			t.Fatalf("%s: acl %d = %v, want %v", what, i, got[i], acls[w])
		}
	}
}

func TestAuthorizeByResourceType(t *testing.T) {
	alice := User("alice")
	acl := func(name string, pt kmsg.ACLResourcePatternType, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) ACL {
		return ACL{kmsg.ACLResourceTypeTopic, name, pt, "User:alice", "*", op, perm}
	}
	lit, pre := kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed
	allow, deny := kmsg.ACLPermissionTypeAllow, kmsg.ACLPermissionTypeDeny
	w := kmsg.ACLOperationWrite
	for _, tc := range []struct {
		name string
		acls []ACL
		want bool
	}{
		{"none", nil, false},
		{"literal allow", []ACL{acl("a", lit, w, allow)}, true},
		{"all implies", []ACL{acl("a", lit, kmsg.ACLOperationAll, allow)}, true},
		{"read does not", []ACL{acl("a", lit, kmsg.ACLOperationRead, allow)}, false},
		{"literal denied", []ACL{acl("a", lit, w, allow), acl("a", lit, w, deny)}, false},
		{"prefix dominates", []ACL{acl("abc", lit, w, allow), acl("ab", pre, w, deny)}, false},
		{"prefix elsewhere", []ACL{acl("abc", lit, w, allow), acl("x", pre, w, deny)}, true},
		{"wildcard deny", []ACL{acl("abc", lit, w, allow), acl("*", lit, w, deny)}, false},
		{"wildcard allow", []ACL{acl("*", lit, w, allow)}, true},
		{"other user", []ACL{{kmsg.ACLResourceTypeTopic, "a", lit, "User:bob", "*", w, allow}}, false},
	} {
		a := NewAuthorizer(AuthorizerConfig{})
		a.SetACLs(tc.acls)
		if got := a.AuthorizeByResourceType(alice, "127.0.0.1", w, kmsg.ACLResourceTypeTopic); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if !NewAuthorizer(AuthorizerConfig{SuperUsers: "User:alice"}).AuthorizeByResourceType(alice, "h", w, kmsg.ACLResourceTypeTopic) {
		t.Error("super user denied")
	}
	if !NewAuthorizer(AuthorizerConfig{AllowEveryoneIfNoACLFound: true}).AuthorizeByResourceType(alice, "h", w, kmsg.ACLResourceTypeTopic) {
		t.Error("allow.everyone.if.no.acl.found ignored")
	}
}
