package broker

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/auth"
	"github.com/kafkit/kafkit/internal/metadata"
)

// Security metadata on a cluster: SCRAM credentials, ACLs and client
// quotas live in the metadata log (records_security.go in
// internal/metadata), as in KRaft, instead of the single node's JSON files.
// The active controller decides each change: it runs the request against
// a copy of the image's state with the same code a single node uses
// (auth.SCRAMStore.Alter, auth.Authorizer.CreateACLs/DeleteACLs,
// auth.Quotas.Alter), appends the difference as records and answers once
// they are applied. Another node forwards the request to it over the
// CONTROLLER endpoint and answers once its own copy has the change, so
// that the client's next request to it, a login included, sees it. Every
// node rebuilds its credential store, authorizer and quotas from its image
// whenever the image's security part changes (syncSecurity), a snapshot
// restore included; Describe* are answered from them.
//
// A forwarded change waits for the state it made (the credential, the
// ACLs, the quota values): a concurrent change of the same entity through
// another node can replace that state before this node sees it, and the
// answer is then REQUEST_TIMED_OUT although the change was committed.

// syncSecurity rebuilds the broker's security state from img when its
// security part changed since the last rebuild; on raft's FSM goroutine.
func (c *cluster) syncSecurity(img *metadata.Image) {
	if img.Security.Offset == c.secSynced {
		return
	}
	c.b.loadSecurity(img)
	c.secSynced = img.Security.Offset
}

// loadSecurity makes the broker's SCRAM credentials, ACLs and quotas
// img's.
func (b *Broker) loadSecurity(img *metadata.Image) {
	if err := b.scram.Replace(scramOf(img)); err != nil {
		b.log.Error("SCRAM credentials of the metadata image", "err", err) // an unknown mechanism code in the log
	}
	if b.acls.authz != nil {
		b.acls.authz.SetACLs(aclsOf(img))
	}
	stored := quotasOf(img)
	b.quotas.q.Replace(storedRequest(stored))
	b.quotas.any.Store(len(stored) > 0)
}

func scramOf(img *metadata.Image) map[string]map[string]auth.SCRAMCredential {
	out := map[string]map[string]auth.SCRAMCredential{}
	for k, c := range img.Security.SCRAM {
		if out[k.User] == nil {
			out[k.User] = map[string]auth.SCRAMCredential{}
		}
		out[k.User][auth.SCRAMMechanism(k.Mechanism)] = auth.SCRAMCredential{Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey, Iterations: c.Iterations}
	}
	return out
}

func aclOf(e metadata.AccessControlEntry) auth.ACL {
	return auth.ACL{
		ResourceType: kmsg.ACLResourceType(e.ResourceType), ResourceName: e.ResourceName,
		PatternType: kmsg.ACLResourcePatternType(e.PatternType), Principal: e.Principal, Host: e.Host,
		Operation: kmsg.ACLOperation(e.Operation), Permission: kmsg.ACLPermissionType(e.Permission),
	}
}

func aclsOf(img *metadata.Image) []auth.ACL {
	var out []auth.ACL
	for _, e := range img.Security.ACLs {
		out = append(out, aclOf(e))
	}
	return out
}

func quotasOf(img *metadata.Image) []storedQuota {
	var out []storedQuota
	for _, k := range slices.Sorted(maps.Keys(img.Security.Quotas)) {
		q := img.Security.Quotas[k]
		s := storedQuota{Values: maps.Clone(q.Values)}
		for _, p := range q.Entity {
			s.Entity = append(s.Entity, kmsg.AlterClientQuotasRequestEntryEntity{Type: p.Type, Name: p.Name})
		}
		out = append(out, s)
	}
	return out
}

// kafkaErr is the Kafka error an error carries, UNKNOWN_SERVER_ERROR for
// others.
func kafkaErr(err error) *kerr.Error {
	if ke, ok := kerr.ErrorForCode(errorCode(err)).(*kerr.Error); ok {
		return ke
	}
	return kerr.UnknownServerError
}

// decideSecurity runs a change on the active controller: fn answers the
// request from the image and returns the records of its change.
func (c *cluster) decideSecurity(fn func(img *metadata.Image) []metadata.Record) error {
	ctx, cancel := context.WithTimeout(c.b.ctx, localWait)
	defer cancel()
	_, err := c.decide(ctx, func(img *metadata.Image) ([]metadata.Record, error) { return fn(img), nil })
	return err
}

// forwardSecurity sends a change to the active controller, then waits
// until this node's state shows what the answer says changed (done).
func (c *cluster) forwardSecurity(req kmsg.Request, code func(kmsg.Response) int16, done func(kmsg.Response) bool) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(c.b.ctx, localWait)
	defer cancel()
	resp, err := c.toController(ctx, req, code)
	if err != nil {
		return nil, forwardError(err)
	}
	return awaitLocal(ctx, func() bool { return done(resp) }, func() kmsg.Response { return resp })
}

// alterSCRAM is AlterUserScramCredentials on a cluster.
func (c *cluster) alterSCRAM(req *kmsg.AlterUserSCRAMCredentialsRequest) *kmsg.AlterUserSCRAMCredentialsResponse {
	var resp *kmsg.AlterUserSCRAMCredentialsResponse
	var err error
	if c.q.IsController() {
		err = c.decideSecurity(func(img *metadata.Image) []metadata.Record {
			s := auth.NewSCRAMStore()
			s.Replace(scramOf(img))
			resp = s.Alter(req)
			return scramChanges(img, s.Credentials())
		})
	} else {
		var r kmsg.Response
		r, err = c.forwardSecurity(req, func(r kmsg.Response) int16 {
			if rs := r.(*kmsg.AlterUserSCRAMCredentialsResponse).Results; len(rs) > 0 {
				return rs[0].ErrorCode
			}
			return 0
		}, func(r kmsg.Response) bool {
			return c.b.hasSCRAMChange(req, r.(*kmsg.AlterUserSCRAMCredentialsResponse))
		})
		resp, _ = r.(*kmsg.AlterUserSCRAMCredentialsResponse)
	}
	if err == nil {
		return resp
	}
	return scramFailed(req, errorCode(err), err.Error())
}

// scramChanges are the records that take img's credentials to next.
func scramChanges(img *metadata.Image, next map[string]map[string]auth.SCRAMCredential) []metadata.Record {
	var out []metadata.Record
	for _, user := range slices.Sorted(maps.Keys(next)) {
		for _, mech := range slices.Sorted(maps.Keys(next[user])) {
			code, _ := auth.SCRAMMechanismCode(mech)
			n := next[user][mech]
			if old, ok := img.Security.SCRAM[metadata.SCRAMKey{User: user, Mechanism: code}]; ok && sameSCRAM(n, old.Salt, old.StoredKey, old.ServerKey, old.Iterations) {
				continue
			}
			out = append(out, &metadata.UserSCRAMCredential{Name: user, Mechanism: code, Salt: n.Salt, StoredKey: n.StoredKey, ServerKey: n.ServerKey, Iterations: n.Iterations})
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(img.Security.SCRAM), func(a, b metadata.SCRAMKey) int {
		return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Mechanism, b.Mechanism))
	}) {
		if _, ok := next[k.User][auth.SCRAMMechanism(k.Mechanism)]; !ok {
			out = append(out, &metadata.RemoveUserSCRAMCredential{Name: k.User, Mechanism: k.Mechanism})
		}
	}
	return out
}

func sameSCRAM(c auth.SCRAMCredential, salt, stored, server []byte, iterations int32) bool {
	return bytes.Equal(c.Salt, salt) && bytes.Equal(c.StoredKey, stored) && bytes.Equal(c.ServerKey, server) && c.Iterations == iterations
}

// hasSCRAMChange reports whether this node's credentials show every change
// resp reports done.
func (b *Broker) hasSCRAMChange(req *kmsg.AlterUserSCRAMCredentialsRequest, resp *kmsg.AlterUserSCRAMCredentialsResponse) bool {
	ok := map[string]bool{}
	for _, r := range resp.Results {
		ok[r.User] = r.ErrorCode == 0
	}
	for _, d := range req.Deletions {
		if _, has := b.scram.Lookup(d.Name, auth.SCRAMMechanism(d.Mechanism)); ok[d.Name] && has {
			return false
		}
	}
	for _, u := range req.Upsertions {
		mech := auth.SCRAMMechanism(u.Mechanism)
		want := auth.SaltedSCRAMCredential(mech, u.Salt, u.SaltedPassword, u.Iterations)
		if got, has := b.scram.Lookup(u.Name, mech); ok[u.Name] && (!has || !sameSCRAM(got, want.Salt, want.StoredKey, want.ServerKey, want.Iterations)) {
			return false
		}
	}
	return true
}

// alterACLs is CreateAcls or DeleteAcls on a cluster, after the
// authorizer and ALTER checks.
func (c *cluster) alterACLs(req kmsg.Request) (kmsg.Response, error) {
	if !c.q.IsController() {
		return c.forwardSecurity(req, func(r kmsg.Response) int16 {
			switch r := r.(type) {
			case *kmsg.CreateACLsResponse:
				if len(r.Results) > 0 {
					return r.Results[0].ErrorCode
				}
			case *kmsg.DeleteACLsResponse:
				if len(r.Results) > 0 {
					return r.Results[0].ErrorCode
				}
			}
			return 0
		}, func(r kmsg.Response) bool { return c.b.hasACLChange(req, r) })
	}
	var resp kmsg.Response
	err := c.decideSecurity(func(img *metadata.Image) []metadata.Record {
		a := auth.NewAuthorizer(auth.AuthorizerConfig{})
		a.SetACLs(aclsOf(img))
		switch r := req.(type) {
		case *kmsg.CreateACLsRequest:
			resp = a.CreateACLs(r)
		case *kmsg.DeleteACLsRequest:
			resp = a.DeleteACLs(r)
		}
		return aclChanges(img, a.ACLs())
	})
	return resp, err
}

// aclChanges are the records that take img's ACLs to next: new ones
// under a random id, removed ones by theirs.
func aclChanges(img *metadata.Image, next []auth.ACL) []metadata.Record {
	have := map[auth.ACL][][16]byte{}
	for id, e := range img.Security.ACLs {
		have[aclOf(e)] = append(have[aclOf(e)], id)
	}
	var out []metadata.Record
	keep := map[auth.ACL]bool{}
	for _, acl := range next {
		keep[acl] = true
		if len(have[acl]) > 0 {
			continue
		}
		e := &metadata.AccessControlEntry{ResourceType: int8(acl.ResourceType), ResourceName: acl.ResourceName,
			PatternType: int8(acl.PatternType), Principal: acl.Principal, Host: acl.Host,
			Operation: int8(acl.Operation), Permission: int8(acl.Permission)}
		rand.Read(e.ID[:])
		out = append(out, e)
	}
	for _, id := range slices.SortedFunc(maps.Keys(img.Security.ACLs), func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) }) {
		if !keep[aclOf(img.Security.ACLs[id])] {
			out = append(out, &metadata.RemoveAccessControlEntry{ID: id})
		}
	}
	return out
}

// hasACLChange reports whether this node's authorizer has every ACL a
// CreateAcls answer created and none that a DeleteAcls answer deleted.
func (b *Broker) hasACLChange(req kmsg.Request, resp kmsg.Response) bool {
	have := map[auth.ACL]bool{}
	for _, acl := range b.acls.authz.ACLs() {
		have[acl] = true
	}
	switch r := resp.(type) {
	case *kmsg.CreateACLsResponse:
		for i, c := range req.(*kmsg.CreateACLsRequest).Creations {
			if i < len(r.Results) && r.Results[i].ErrorCode == 0 && !have[auth.ACL{ResourceType: c.ResourceType, ResourceName: c.ResourceName,
				PatternType: c.ResourcePatternType, Principal: c.Principal, Host: c.Host, Operation: c.Operation, Permission: c.PermissionType}] {
				return false
			}
		}
	case *kmsg.DeleteACLsResponse:
		for _, res := range r.Results {
			for _, m := range res.MatchingACLs {
				if res.ErrorCode == 0 && m.ErrorCode == 0 && have[auth.ACL{ResourceType: m.ResourceType, ResourceName: m.ResourceName,
					PatternType: m.ResourcePatternType, Principal: m.Principal, Host: m.Host, Operation: m.Operation, Permission: m.PermissionType}] {
					return false
				}
			}
		}
	}
	return true
}

// alterQuotas is AlterClientQuotas on a cluster.
func (c *cluster) alterQuotas(req *kmsg.AlterClientQuotasRequest) (*kmsg.AlterClientQuotasResponse, error) {
	if !c.q.IsController() {
		r, err := c.forwardSecurity(req, func(r kmsg.Response) int16 {
			if es := r.(*kmsg.AlterClientQuotasResponse).Entries; len(es) > 0 {
				return es[0].ErrorCode
			}
			return 0
		}, func(r kmsg.Response) bool {
			return req.ValidateOnly || c.b.hasQuotaChange(req, r.(*kmsg.AlterClientQuotasResponse))
		})
		resp, _ := r.(*kmsg.AlterClientQuotasResponse)
		return resp, err
	}
	var resp *kmsg.AlterClientQuotasResponse
	err := c.decideSecurity(func(img *metadata.Image) []metadata.Record {
		q := c.b.newQuotaStore()
		restoreQuotas(q, quotasOf(img))
		resp = q.Alter(req)
		if req.ValidateOnly {
			return nil
		}
		return quotaChanges(img, storedQuotas(q))
	})
	return resp, err
}

func entityParts(e []kmsg.AlterClientQuotasRequestEntryEntity) []metadata.QuotaEntityPart {
	var out []metadata.QuotaEntityPart
	for _, p := range e {
		out = append(out, metadata.QuotaEntityPart{Type: p.Type, Name: p.Name})
	}
	return out
}

// quotaChanges are the records that take img's quotas to next.
func quotaChanges(img *metadata.Image, next []storedQuota) []metadata.Record {
	var out []metadata.Record
	keep := map[string]map[string]bool{}
	for _, s := range next {
		parts := entityParts(s.Entity)
		k := metadata.QuotaEntityKey(parts)
		keep[k] = map[string]bool{}
		old := img.Security.Quotas[k]
		for _, key := range slices.Sorted(maps.Keys(s.Values)) {
			keep[k][key] = true
			if old != nil {
				if v, ok := old.Values[key]; ok && v == s.Values[key] {
					continue
				}
			}
			out = append(out, &metadata.ClientQuota{Entity: parts, Key: key, Value: s.Values[key]})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(img.Security.Quotas)) {
		q := img.Security.Quotas[k]
		for _, key := range slices.Sorted(maps.Keys(q.Values)) {
			if !keep[k][key] {
				out = append(out, &metadata.ClientQuota{Entity: q.Entity, Key: key, Remove: true})
			}
		}
	}
	return out
}

// hasQuotaChange reports whether this node's quotas have the values of
// every entry resp reports done.
func (b *Broker) hasQuotaChange(req *kmsg.AlterClientQuotasRequest, resp *kmsg.AlterClientQuotasResponse) bool {
	for i, e := range req.Entries {
		if i >= len(resp.Entries) || resp.Entries[i].ErrorCode != 0 {
			continue
		}
		dreq := kmsg.NewPtrDescribeClientQuotasRequest()
		dreq.Strict = true
		for _, p := range e.Entity {
			comp := kmsg.NewDescribeClientQuotasRequestComponent()
			comp.EntityType, comp.MatchType, comp.Match = p.Type, kmsg.QuotasMatchTypeDefault, p.Name
			if p.Name != nil {
				comp.MatchType = kmsg.QuotasMatchTypeExact
			}
			dreq.Components = append(dreq.Components, comp)
		}
		have := map[string]float64{}
		if d := b.quotas.q.Describe(dreq); len(d.Entries) == 1 {
			for _, v := range d.Entries[0].Values {
				have[v.Key] = v.Value
			}
		}
		for _, op := range e.Ops {
			if v, ok := have[op.Key]; op.Remove == ok || !op.Remove && v != op.Value {
				return false
			}
		}
	}
	return true
}

// authorizePeer checks a request on the CONTROLLER endpoint: another
// node's registration, heartbeat, marker or an admin request it forwards
// after authorizing its client. As Kafka's controller does for brokers (and
// for the Envelope of a forwarded request), the peer's principal needs
// CLUSTER_ACTION on the cluster (super.users have it); nothing else is
// checked. An operator's tool may also send some requests there itself
// (--bootstrap-controller), with what ControllerApis asks of them:
// nothing for ApiVersions, DESCRIBE on the cluster for DescribeQuorum,
// ALTER for DescribeCluster, UnregisterBroker and UpdateFeatures; ALTER alone for
// AddRaftVoter and RemoveRaftVoter (authorizeClusterOperation(ALTER), no
// CLUSTER_ACTION: a node's principal may not change the quorum).
func (b *Broker) authorizePeer(rc *reqCtx, req kmsg.Request, next handlerFn) (kmsg.Response, error) {
	op := kmsg.ACLOperationClusterAction
	switch req.(type) {
	case *kmsg.ApiVersionsRequest:
		return next(rc, req)
	case *kmsg.DescribeQuorumRequest:
		op = kmsg.ACLOperationDescribe
	case *kmsg.DescribeClusterRequest, *kmsg.UnregisterBrokerRequest, *kmsg.UpdateFeaturesRequest:
		op = kmsg.ACLOperationAlter
	case *kmsg.AddRaftVoterRequest, *kmsg.RemoveRaftVoterRequest:
		if b.acls.authz == nil || b.allowedCluster(rc, kmsg.ACLOperationAlter) {
			return next(rc, req)
		}
		return errorResponse(req, kerr.ClusterAuthorizationFailed, ""), nil
	}
	if b.acls.authz == nil || b.allowedCluster(rc, kmsg.ACLOperationClusterAction) || b.allowedCluster(rc, op) {
		return next(rc, req)
	}
	b.log.Warn("a request on the controller listener from a principal without CLUSTER_ACTION on the cluster (add the nodes' principal to super.users)",
		"principal", rc.principal, "host", rc.host, "api", kmsg.NameForKey(req.Key()))
	return errorResponse(req, kerr.ClusterAuthorizationFailed, ""), nil
}
