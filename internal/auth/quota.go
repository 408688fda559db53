package auth

import (
	"cmp"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client quota entity types.
const (
	EntityUser     = "user"
	EntityClientID = "client-id"
	EntityIP       = "ip"
)

// Client quota keys.
const (
	ProducerByteRate       = "producer_byte_rate"
	ConsumerByteRate       = "consumer_byte_rate"
	RequestPercentage      = "request_percentage"
	ControllerMutationRate = "controller_mutation_rate"
	ConnectionCreationRate = "connection_creation_rate"
)

// quotaKeys maps each key to whether its value must be integral, for
// user/client-id entities and for ip entities.
var (
	userClientKeys = map[string]bool{ProducerByteRate: true, ConsumerByteRate: true, RequestPercentage: false, ControllerMutationRate: false}
	ipKeys         = map[string]bool{ConnectionCreationRate: true}
)

// Quota window defaults: quota.window.num and quota.window.size.seconds;
// and how long a client's rate is kept without traffic (Kafka's quota
// sensors' inactive expiration).
const (
	QuotaSamples    = 11
	QuotaWindow     = time.Second
	QuotaIdleExpiry = time.Hour
)

// QuotaEntity names who a quota applies to. A nil name is the default
// entity of that type; an absent type (Has* false) is not part of it.
type QuotaEntity struct {
	User, ClientID, IP        *string
	HasUser, HasClient, HasIP bool
}

// quotaPart is one entity type of a QuotaEntity and its name (nil for the
// default).
type quotaPart struct {
	typ  string
	name *string
}

// parts returns the entity's types in Kafka's order: user, client-id, ip.
func (e QuotaEntity) parts() []quotaPart {
	var ps []quotaPart
	for _, d := range []struct {
		has bool
		p   quotaPart
	}{{e.HasUser, quotaPart{EntityUser, e.User}}, {e.HasClient, quotaPart{EntityClientID, e.ClientID}}, {e.HasIP, quotaPart{EntityIP, e.IP}}} {
		if d.has {
			ps = append(ps, d.p)
		}
	}
	return ps
}

func (e QuotaEntity) String() string {
	var s []string
	for _, p := range e.parts() {
		name := "<default>"
		if p.name != nil {
			name = *p.name
		}
		s = append(s, p.typ+"="+name)
	}
	return strings.Join(s, ",")
}

// entityKey is a comparable QuotaEntity.
type entityKey struct {
	user, client, ip          string
	hasUser, hasClient, hasIP bool
	defUser, defClient, defIP bool // the name is the default
}

func keyOf(e QuotaEntity) entityKey {
	k := entityKey{hasUser: e.HasUser, hasClient: e.HasClient, hasIP: e.HasIP}
	k.user, k.defUser = nameOf(e.HasUser, e.User)
	k.client, k.defClient = nameOf(e.HasClient, e.ClientID)
	k.ip, k.defIP = nameOf(e.HasIP, e.IP)
	return k
}

// nameOf returns a dimension's name and whether it is the default one.
func nameOf(has bool, p *string) (string, bool) {
	if p == nil {
		return "", has
	}
	return *p, false
}

func (k entityKey) entity() QuotaEntity {
	opt := func(has, def bool, name string) *string {
		if !has || def {
			return nil
		}
		return &name
	}
	return QuotaEntity{
		User: opt(k.hasUser, k.defUser, k.user), ClientID: opt(k.hasClient, k.defClient, k.client), IP: opt(k.hasIP, k.defIP, k.ip),
		HasUser: k.hasUser, HasClient: k.hasClient, HasIP: k.hasIP,
	}
}

// Quotas holds client quotas and the sampled rates they are enforced
// over. It is safe for concurrent use.
type Quotas struct {
	samples int
	window  time.Duration

	mu     sync.Mutex // guards values and rates
	values map[entityKey]map[string]float64
	rates  map[rateKey]*SampledRate
}

// rateKey names one enforced rate: Kafka keeps a sensor per quota key and
// per actual user and/or client-id, the dimensions of the entity whose
// quota applies (so a default client-id quota limits each client on its own).
type rateKey struct {
	key              string
	user, client, ip string
}

// NewQuotas returns an empty quota store measuring rates over Kafka's
// default windows.
func NewQuotas() *Quotas { return NewQuotasWindows(QuotaSamples, QuotaWindow) }

// NewQuotasWindows returns an empty quota store measuring rates over
// samples windows of window (quota.window.num, quota.window.size.seconds).
func NewQuotasWindows(samples int, window time.Duration) *Quotas {
	return &Quotas{samples: samples, window: window, values: map[entityKey]map[string]float64{}, rates: map[rateKey]*SampledRate{}}
}

// precedence lists, most specific first, the entities whose quota applies
// to a user and client-id (Kafka's DefaultQuotaCallback order).
func precedence(user, clientID string) []entityKey {
	uc := func(hasUser, defUser, hasClient, defClient bool) entityKey {
		k := entityKey{hasUser: hasUser, defUser: defUser, hasClient: hasClient, defClient: defClient}
		if hasUser && !defUser {
			k.user = user
		}
		if hasClient && !defClient {
			k.client = clientID
		}
		return k
	}
	return []entityKey{
		uc(true, false, true, false), uc(true, false, true, true), uc(true, false, false, false),
		uc(true, true, true, false), uc(true, true, true, true), uc(true, true, false, false),
		uc(false, false, true, false), uc(false, false, true, true),
	}
}

// Limit returns the quota for key that applies to user (the principal's
// name) and clientID, and the entity it comes from, following Kafka's
// precedence: user+client-id, user+default client-id, user, default
// user+client-id, default user+default client-id, default user, client-id,
// default client-id.
func (q *Quotas) Limit(user, clientID, key string) (float64, QuotaEntity, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	k, v, ok := q.limit(user, clientID, key)
	return v, k.entity(), ok
}

// limit is Limit with q.mu held.
func (q *Quotas) limit(user, clientID, key string) (entityKey, float64, bool) {
	for _, k := range precedence(user, clientID) {
		if v, ok := q.values[k][key]; ok {
			return k, v, true
		}
	}
	return entityKey{}, 0, false
}

// IPLimit returns the connection_creation_rate of ip: its own quota, else
// the default ip quota.
func (q *Quotas) IPLimit(ip string) (float64, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ipLimit(ip)
}

// ipLimit is IPLimit with q.mu held.
func (q *Quotas) ipLimit(ip string) (float64, bool) {
	for _, k := range []entityKey{{hasIP: true, ip: ip}, {hasIP: true, defIP: true}} {
		if v, ok := q.values[k][ConnectionCreationRate]; ok {
			return v, true
		}
	}
	return 0, false
}

// RecordConnection counts a new connection from ip at now against its
// connection_creation_rate and returns how long it is throttled (Kafka's
// ConnectionQuotas: the broker closes such a connection after that time,
// without serving it); zero without a quota or within it.
func (q *Quotas) RecordConnection(now time.Time, ip string) time.Duration {
	q.mu.Lock()
	limit, ok := q.ipLimit(ip)
	if !ok {
		q.mu.Unlock()
		return 0
	}
	r := q.rate(rateKey{key: ConnectionCreationRate, ip: ip})
	q.mu.Unlock()
	return r.RecordAndThrottle(now, 1, limit)
}

// rate returns the sampled rate of k, created on first use; q.mu is held.
func (q *Quotas) rate(k rateKey) *SampledRate {
	r := q.rates[k]
	if r == nil {
		r = NewSampledRate(q.samples, q.window)
		q.rates[k] = r
	}
	return r
}

// Record adds value (bytes, or request time as a percentage) to the rate
// of user and clientID for key at now, and returns how long the client is
// to be throttled: zero while the observed rate is within the quota, and
// Kafka's (observed - quota) / quota × window once it is over. Without a
// quota nothing is recorded.
func (q *Quotas) Record(now time.Time, user, clientID, key string, value float64) time.Duration {
	q.mu.Lock()
	k, limit, ok := q.limit(user, clientID, key)
	if !ok {
		q.mu.Unlock()
		return 0
	}
	rk := rateKey{key: key}
	if k.hasUser {
		rk.user = user
	}
	if k.hasClient {
		rk.client = clientID
	}
	r := q.rate(rk)
	q.mu.Unlock()
	return r.RecordAndThrottle(now, value, limit)
}

// ExpireIdle forgets the rates of clients that recorded nothing for
// QuotaIdleExpiry before now, so that a broker seeing many client ids does
// not keep them all; the broker calls it now and then.
func (q *Quotas) ExpireIdle(now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for k, r := range q.rates {
		r.mu.Lock()
		idle := now.Sub(r.last) > QuotaIdleExpiry
		r.mu.Unlock()
		if idle {
			delete(q.rates, k)
		}
	}
}

// SampledRate is Kafka's Rate over a SampledStat: a per-second rate over
// the last samples windows of window each. It is safe for concurrent use.
type SampledRate struct {
	samples int
	window  time.Duration

	mu      sync.Mutex // guards buckets, current and last
	buckets []bucket
	current int
	last    time.Time // of the latest record
}

type bucket struct {
	start time.Time
	value float64
}

// NewSampledRate returns a rate over samples windows of window.
func NewSampledRate(samples int, window time.Duration) *SampledRate {
	return &SampledRate{samples: samples, window: window}
}

// RecordAndThrottle records value at now and returns the throttle time
// for a quota of limit per second (zero when within it).
func (r *SampledRate) RecordAndThrottle(now time.Time, value, limit float64) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(now, value)
	rate, size := r.measure(now)
	return ThrottleTime(rate, limit, size)
}

// Rate returns the per-second rate at now.
func (r *SampledRate) Rate(now time.Time) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	rate, _ := r.measure(now)
	return rate
}

// record adds value to the current window, opening a new one (reusing the
// oldest) when the current window has ended.
func (r *SampledRate) record(now time.Time, value float64) {
	r.last = now
	switch {
	case len(r.buckets) == 0:
		r.buckets = append(r.buckets, bucket{start: now})
	case now.Sub(r.buckets[r.current].start) >= r.window:
		r.current = (r.current + 1) % r.samples
		if r.current == len(r.buckets) {
			r.buckets = append(r.buckets, bucket{})
		}
		r.buckets[r.current] = bucket{start: now}
	}
	r.buckets[r.current].value += value
}

// measure returns the rate per second and the window it is measured over:
// windows older than samples × window are dropped, and the elapsed time
// counts at least samples-1 full windows so that a new client's first
// bytes are not measured over a few milliseconds.
func (r *SampledRate) measure(now time.Time) (float64, time.Duration) {
	var total float64
	oldest := now
	for i := range r.buckets {
		b := &r.buckets[i]
		if now.Sub(b.start) >= time.Duration(r.samples)*r.window {
			*b = bucket{start: now}
		}
		total += b.value
		if b.start.Before(oldest) {
			oldest = b.start
		}
	}
	elapsed := now.Sub(oldest)
	if full := int(elapsed / r.window); full < r.samples-1 {
		elapsed += time.Duration(r.samples-1-full) * r.window
	}
	return total / elapsed.Seconds(), elapsed
}

// ThrottleTime is Kafka's QuotaUtils.throttleTime: how long a client whose
// observed rate exceeds limit must wait for the rate, measured over
// window, to come back to the limit. Zero when within the limit.
func ThrottleTime(observed, limit float64, window time.Duration) time.Duration {
	if observed <= limit || limit <= 0 {
		return 0
	}
	ms := math.Round((observed - limit) / limit * float64(window.Milliseconds()))
	return time.Duration(ms) * time.Millisecond
}

// quotaEntityOf validates a request's entity as Kafka's
// ClientQuotaControlManager does and returns it with the keys it accepts.
func quotaEntityOf(parts []kmsg.AlterClientQuotasRequestEntryEntity) (QuotaEntity, map[string]bool, string) {
	var e QuotaEntity
	if len(parts) == 0 {
		return e, nil, "Invalid empty client quota entity"
	}
	for _, part := range parts {
		typ, name := part.Type, part.Name
		var has *bool
		var dst **string
		switch typ {
		case EntityUser:
			has, dst = &e.HasUser, &e.User
		case EntityClientID:
			has, dst = &e.HasClient, &e.ClientID
		case EntityIP:
			has, dst = &e.HasIP, &e.IP
		default:
			return e, nil, "Unhandled client quota entity type: " + typ
		}
		if *has {
			return e, nil, "Invalid client quota entity, duplicate entity entry " + typ
		}
		if name != nil && *name == "" {
			return e, nil, "Empty " + typ + " not supported"
		}
		*has, *dst = true, name
	}
	switch {
	case e.HasIP && (e.HasUser || e.HasClient):
		// Kafka's message, missing space included.
		return e, nil, "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"
	case e.HasIP:
		if e.IP != nil && net.ParseIP(*e.IP) == nil {
			return e, nil, *e.IP + " is not a valid IP or resolvable host."
		}
		return e, ipKeys, ""
	}
	return e, userClientKeys, ""
}

// validateQuotaValue checks one quota value against the keys an entity
// accepts.
func validateQuotaValue(keys map[string]bool, key string, v float64) string {
	integral, ok := keys[key]
	switch {
	case !ok:
		return "Invalid configuration key " + key
	case math.IsNaN(v) || math.IsInf(v, 0) || v <= 0:
		return fmt.Sprintf("Quota %s must be greater than 0", key)
	case integral && math.Abs(math.Trunc(v+1e-6)-v) > 1e-6:
		return key + " cannot be a fractional value."
	}
	return ""
}

// Alter answers AlterClientQuotas: each entry's entity and operations are
// validated (INVALID_REQUEST with Kafka's message: unknown or repeated
// entity type, empty name, ip mixed with user or client-id, a key the
// entity does not take, a value not above zero, a fraction for a long
// key, a key twice, an entity twice); valid entries apply unless
// ValidateOnly. Authorization (ALTER_CONFIGS on the cluster) is the
// caller's.
func (q *Quotas) Alter(req *kmsg.AlterClientQuotasRequest) *kmsg.AlterClientQuotasResponse {
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	seen := map[entityKey]int{}
	for _, e := range req.Entries {
		if ent, _, msg := quotaEntityOf(e.Entity); msg == "" {
			seen[keyOf(ent)]++
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range req.Entries {
		r := kmsg.NewAlterClientQuotasResponseEntry()
		for _, ent := range e.Entity {
			re := kmsg.NewAlterClientQuotasResponseEntryEntity()
			re.Type, re.Name = ent.Type, ent.Name
			r.Entity = append(r.Entity, re)
		}
		ent, keys, msg := quotaEntityOf(e.Entity)
		if msg == "" && seen[keyOf(ent)] > 1 {
			msg = "Ignoring duplicate entity " + ent.String()
		}
		ops := map[string]bool{}
		for _, op := range e.Ops {
			if msg != "" {
				break
			}
			if ops[op.Key] {
				msg = "Duplicate quota key " + op.Key + " not updating quota for this entity " + ent.String()
			} else if !op.Remove {
				msg = validateQuotaValue(keys, op.Key, op.Value)
			}
			ops[op.Key] = true
		}
		if msg != "" {
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(msg)
		} else if !req.ValidateOnly {
			q.apply(keyOf(ent), e.Ops)
		}
		resp.Entries = append(resp.Entries, r)
	}
	return resp
}

// Replace makes the quotas exactly those req sets (no ValidateOnly, every
// entry valid), keeping the sampled rates: a node that follows the
// metadata log rebuilds its quotas from its image with it. Readers never
// see a partial set.
func (q *Quotas) Replace(req *kmsg.AlterClientQuotasRequest) {
	next := &Quotas{values: map[entityKey]map[string]float64{}}
	next.Alter(req)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.values = next.values
}

// apply sets and removes one entity's quotas; q.mu is held.
func (q *Quotas) apply(k entityKey, ops []kmsg.AlterClientQuotasRequestEntryOp) {
	vals := q.values[k]
	if vals == nil {
		vals = map[string]float64{}
		q.values[k] = vals
	}
	for _, op := range ops {
		if op.Remove {
			delete(vals, op.Key)
		} else {
			vals[op.Key] = op.Value
		}
	}
	if len(vals) == 0 {
		delete(q.values, k)
	}
}

// Describe answers DescribeClientQuotas: each component filters one entity
// type (EXACT name, DEFAULT, or ANY: the type present with any name or the
// default) and an entity must pass them all, as Kafka's
// ClientQuotasImage.describe matches; with Strict, entities with other
// types are left out. Authorization (DESCRIBE_CONFIGS on the cluster) is
// the caller's.
func (q *Quotas) Describe(req *kmsg.DescribeClientQuotasRequest) *kmsg.DescribeClientQuotasResponse {
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	if err, msg := validateQuotaFilter(req.Components); err != nil {
		resp.ErrorCode, resp.ErrorMessage = err.Code, kmsg.StringPtr(msg)
		return resp
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var keys []entityKey
	for k := range q.values {
		if quotaFilterMatches(req.Components, req.Strict, k) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b entityKey) int { return cmp.Compare(a.entity().String(), b.entity().String()) })
	for _, k := range keys {
		entry := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, p := range k.entity().parts() {
			ent := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			ent.Type, ent.Name = p.typ, p.name
			entry.Entity = append(entry.Entity, ent)
		}
		var names []string
		for key := range q.values[k] {
			names = append(names, key)
		}
		slices.Sort(names)
		for _, key := range names {
			v := kmsg.NewDescribeClientQuotasResponseEntryValue()
			v.Key, v.Value = key, q.values[k][key]
			entry.Values = append(entry.Values, v)
		}
		resp.Entries = append(resp.Entries, entry)
	}
	return resp
}

// validateQuotaFilter checks DescribeClientQuotas' components as Kafka's
// ClientQuotasImage does, in its order, and returns the error code and
// message of the first problem.
func validateQuotaFilter(cs []kmsg.DescribeClientQuotasRequestComponent) (*kerr.Error, string) {
	types := map[string]bool{}
	for _, c := range cs {
		switch {
		case c.EntityType == "":
			return kerr.InvalidRequest, "Invalid empty entity type."
		case types[c.EntityType]:
			return kerr.InvalidRequest, "Entity type " + c.EntityType + " cannot appear more than once in the filter."
		case c.EntityType != EntityUser && c.EntityType != EntityClientID && c.EntityType != EntityIP:
			return kerr.UnsupportedVersion, "Unsupported entity type " + c.EntityType
		case c.MatchType == kmsg.QuotasMatchTypeExact && c.Match == nil:
			return kerr.InvalidRequest, "Request specified MATCH_TYPE_EXACT, but set match string to null."
		case c.MatchType == kmsg.QuotasMatchTypeDefault && c.Match != nil:
			return kerr.InvalidRequest, "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
		case c.MatchType == kmsg.QuotasMatchTypeAny && c.Match != nil:
			return kerr.InvalidRequest, "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."
		case c.MatchType > kmsg.QuotasMatchTypeAny || c.MatchType < kmsg.QuotasMatchTypeExact:
			return kerr.InvalidRequest, fmt.Sprintf("Unknown match type %d", c.MatchType)
		}
		types[c.EntityType] = true
	}
	if types[EntityIP] && (types[EntityUser] || types[EntityClientID]) {
		return kerr.InvalidRequest, "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component."
	}
	return nil, ""
}

// quotaFilterMatches reports whether entity k passes the components.
func quotaFilterMatches(cs []kmsg.DescribeClientQuotasRequestComponent, strict bool, k entityKey) bool {
	dims := map[string]struct {
		has, def bool
		name     string
	}{
		EntityUser:     {k.hasUser, k.defUser, k.user},
		EntityClientID: {k.hasClient, k.defClient, k.client},
		EntityIP:       {k.hasIP, k.defIP, k.ip},
	}
	for _, c := range cs {
		d := dims[c.EntityType]
		switch {
		case !d.has,
			c.MatchType == kmsg.QuotasMatchTypeExact && (d.def || d.name != *c.Match),
			c.MatchType == kmsg.QuotasMatchTypeDefault && !d.def:
			return false
		}
	}
	if strict {
		n := 0
		for _, d := range dims {
			if d.has {
				n++
			}
		}
		return n == len(cs)
	}
	return true
}
