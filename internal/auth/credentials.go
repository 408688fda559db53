package auth

import (
	"fmt"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// scramMechanisms maps the mechanism codes of the SCRAM credential APIs
// (Kafka's ScramMechanism type) to mechanism names.
var scramMechanisms = map[int8]string{1: MechanismSCRAMSHA256, 2: MechanismSCRAMSHA512}

// SCRAMStore holds SCRAM credentials by user and mechanism. It is safe for
// concurrent use: connections look credentials up while admin requests
// change them.
type SCRAMStore struct {
	mu    sync.RWMutex                        // guards creds
	creds map[string]map[int8]SCRAMCredential // user → mechanism code → credential
}

// NewSCRAMStore returns an empty store.
func NewSCRAMStore() *SCRAMStore {
	return &SCRAMStore{creds: map[string]map[int8]SCRAMCredential{}}
}

// Lookup is the store's CredentialLookup for NewSCRAMServer.
func (s *SCRAMStore) Lookup(user, mechanism string) (SCRAMCredential, bool) {
	code, ok := scramCode(mechanism)
	if !ok {
		return SCRAMCredential{}, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.creds[user][code]
	return c, ok
}

// Set stores the credential of user for mechanism, as a replayed
// metadata record or a configured user does.
func (s *SCRAMStore) Set(user, mechanism string, c SCRAMCredential) error {
	code, ok := scramCode(mechanism)
	if !ok {
		return fmt.Errorf("unsupported SCRAM mechanism %q", mechanism)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set(user, code, &c)
	return nil
}

// set stores c, or deletes the credential when c is nil; s.mu is held.
func (s *SCRAMStore) set(user string, code int8, c *SCRAMCredential) {
	if c == nil {
		delete(s.creds[user], code)
		if len(s.creds[user]) == 0 {
			delete(s.creds, user)
		}
		return
	}
	if s.creds[user] == nil {
		s.creds[user] = map[int8]SCRAMCredential{}
	}
	s.creds[user][code] = *c
}

// Describe answers DescribeUserScramCredentials as Kafka's ScramImage
// does: no users means all of them, a user named twice gets
// DUPLICATE_RESOURCE and one without credentials RESOURCE_NOT_FOUND; only
// mechanisms and iterations are returned. Authorization (DESCRIBE on the
// cluster) is the caller's.
func (s *SCRAMStore) Describe(req *kmsg.DescribeUserSCRAMCredentialsRequest) *kmsg.DescribeUserSCRAMCredentialsResponse {
	s.mu.RLock()
	defer s.mu.RUnlock()
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	var users []string
	seen := map[string]int{}
	if len(req.Users) == 0 {
		for u := range s.creds {
			users = append(users, u)
		}
		slices.Sort(users)
	} else {
		for _, u := range req.Users {
			if seen[u.Name]++; seen[u.Name] == 1 {
				users = append(users, u.Name)
			}
		}
	}
	for _, u := range users {
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User = u
		for _, code := range []int8{1, 2} {
			if c, ok := s.creds[u][code]; ok {
				info := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				info.Mechanism, info.Iterations = code, c.Iterations
				r.CredentialInfos = append(r.CredentialInfos, info)
			}
		}
		switch {
		case seen[u] > 1:
			r.ErrorCode = kerr.DuplicateResource.Code
			r.ErrorMessage = kmsg.StringPtr("Cannot describe SCRAM credentials for the same user twice in a single request: " + u)
			r.CredentialInfos = nil
		case len(r.CredentialInfos) == 0:
			r.ErrorCode = kerr.ResourceNotFound.Code
			r.ErrorMessage = kmsg.StringPtr("Attempt to describe a user credential that does not exist: " + u)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp
}

// Alter applies AlterUserScramCredentials as Kafka's ScramControlManager
// does: a user altered twice in one request (deletion or upsertion) gets
// DUPLICATE_RESOURCE and none of its changes apply; an empty name or
// iterations outside [4096, 16384] UNACCEPTABLE_CREDENTIAL; an unknown
// mechanism UNSUPPORTED_SASL_MECHANISM; deleting a missing credential
// RESOURCE_NOT_FOUND. The salted password is taken as sent. Every valid
// user's change applies. Authorization (ALTER on the cluster) is the
// caller's.
func (s *SCRAMStore) Alter(req *kmsg.AlterUserSCRAMCredentialsRequest) *kmsg.AlterUserSCRAMCredentialsResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	type change struct {
		code int8
		cred *SCRAMCredential // nil deletes
	}
	changes := map[string]change{}
	var order []string // each user once, in request order
	failures := map[string]*kmsg.AlterUserSCRAMCredentialsResponseResult{}
	fail := func(user string, err *kerr.Error, msg string) {
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User, r.ErrorCode, r.ErrorMessage = user, err.Code, kmsg.StringPtr(msg)
		failures[user] = &r
		delete(changes, user)
	}
	consider := func(user string, code int8, validate func() (*kerr.Error, string), c change) {
		if failures[user] != nil {
			return
		}
		if _, dup := changes[user]; dup {
			fail(user, kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
			return
		}
		order = append(order, user)
		switch {
		case user == "":
			fail(user, kerr.UnacceptableCredential, "Username must not be empty")
		case scramMechanisms[code] == "":
			fail(user, kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
		default:
			if err, msg := validate(); err != nil {
				fail(user, err, msg)
				return
			}
			changes[user] = c
		}
	}
	for _, d := range req.Deletions {
		consider(d.Name, d.Mechanism, func() (*kerr.Error, string) {
			if _, ok := s.creds[d.Name][d.Mechanism]; !ok {
				return kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist"
			}
			return nil, ""
		}, change{code: d.Mechanism})
	}
	for _, u := range req.Upsertions {
		var cred *SCRAMCredential
		if mech := scramMechanisms[u.Mechanism]; mech != "" {
			c := SaltedSCRAMCredential(mech, u.Salt, u.SaltedPassword, u.Iterations)
			cred = &c
		}
		consider(u.Name, u.Mechanism, func() (*kerr.Error, string) {
			switch {
			case u.Iterations < MinSCRAMIterations:
				return kerr.UnacceptableCredential, "Too few iterations"
			case u.Iterations > MaxSCRAMIterations:
				return kerr.UnacceptableCredential, "Too many iterations"
			}
			return nil, ""
		}, change{u.Mechanism, cred})
	}
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	var failed []kmsg.AlterUserSCRAMCredentialsResponseResult
	for _, user := range order {
		if r := failures[user]; r != nil {
			failed = append(failed, *r)
			continue
		}
		c := changes[user]
		s.set(user, c.code, c.cred)
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User = user
		resp.Results = append(resp.Results, r)
	}
	resp.Results = append(resp.Results, failed...)
	return resp
}

// Credentials copies every credential: user → mechanism name → credential,
// what the broker persists.
func (s *SCRAMStore) Credentials() map[string]map[string]SCRAMCredential {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]map[string]SCRAMCredential, len(s.creds))
	for user, byCode := range s.creds {
		out[user] = make(map[string]SCRAMCredential, len(byCode))
		for code, c := range byCode {
			out[user][scramMechanisms[code]] = c
		}
	}
	return out
}

// Replace swaps the store's content for creds (as Credentials returns
// them): the broker loads its persisted credentials with it and undoes an
// Alter it could not persist.
func (s *SCRAMStore) Replace(creds map[string]map[string]SCRAMCredential) error {
	next := map[string]map[int8]SCRAMCredential{}
	for user, byName := range creds {
		for name, c := range byName {
			code, ok := scramCode(name)
			if !ok {
				return fmt.Errorf("unsupported SCRAM mechanism %q for user %q", name, user)
			}
			if next[user] == nil {
				next[user] = map[int8]SCRAMCredential{}
			}
			next[user][code] = c
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds = next
	return nil
}

// SCRAMMechanism is the name of a SCRAM mechanism code of the credential
// APIs and metadata records ("" for an unknown code).
func SCRAMMechanism(code int8) string { return scramMechanisms[code] }

// SCRAMMechanismCode is the code of a SCRAM mechanism name.
func SCRAMMechanismCode(mechanism string) (int8, bool) { return scramCode(mechanism) }

func scramCode(mechanism string) (int8, bool) {
	for code, name := range scramMechanisms {
		if name == mechanism {
			return code, true
		}
	}
	return 0, false
}
