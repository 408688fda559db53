package auth

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func ptr(s string) *string { return &s }

// quotaEntry builds an AlterClientQuotas entry from type/name pairs (a nil
// name is the default) and ops.
func quotaEntry(entity []kmsg.AlterClientQuotasRequestEntryEntity, ops ...kmsg.AlterClientQuotasRequestEntryOp) kmsg.AlterClientQuotasRequestEntry {
	e := kmsg.NewAlterClientQuotasRequestEntry()
	e.Entity, e.Ops = entity, ops
	return e
}

func ent(typ string, name *string) kmsg.AlterClientQuotasRequestEntryEntity {
	e := kmsg.NewAlterClientQuotasRequestEntryEntity()
	e.Type, e.Name = typ, name
	return e
}

func set(key string, v float64) kmsg.AlterClientQuotasRequestEntryOp {
	op := kmsg.NewAlterClientQuotasRequestEntryOp()
	op.Key, op.Value = key, v
	return op
}

func remove(key string) kmsg.AlterClientQuotasRequestEntryOp {
	op := kmsg.NewAlterClientQuotasRequestEntryOp()
	op.Key, op.Remove = key, true
	return op
}

func alterQuotas(t *testing.T, q *Quotas, validateOnly bool, entries ...kmsg.AlterClientQuotasRequestEntry) []*string {
	t.Helper()
	req := kmsg.NewPtrAlterClientQuotasRequest()
	req.Entries, req.ValidateOnly = entries, validateOnly
	resp := q.Alter(req)
	if len(resp.Entries) != len(entries) {
		t.Fatalf("%d results for %d entries", len(resp.Entries), len(entries))
	}
	var msgs []*string
	for i, r := range resp.Entries {
		if (r.ErrorCode == 0) != (r.ErrorMessage == nil) || r.ErrorCode != 0 && r.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("entry %d: %+v", i, r)
		}
		if len(r.Entity) != len(entries[i].Entity) {
			t.Fatalf("entry %d: entity %+v", i, r.Entity)
		}
		msgs = append(msgs, r.ErrorMessage)
	}
	return msgs
}

func TestQuotaPrecedence(t *testing.T) {
	levels := []struct {
		entity []kmsg.AlterClientQuotasRequestEntryEntity
		value  float64
	}{ // most specific first
		{[]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityUser, ptr("u")), ent(EntityClientID, ptr("c"))}, 1},
		{[]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityUser, ptr("u")), ent(EntityClientID, nil)}, 2},
		{[]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityUser, ptr("u"))}, 3},
		{[]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityClientID, ptr("c")), ent(EntityUser, nil)}, 4},
		{[]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityUser, nil), ent(EntityClientID, nil)}, 5},
		{[]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityUser, nil)}, 6},
		{[]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityClientID, ptr("c"))}, 7},
		{[]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityClientID, nil)}, 8},
	}
	q := NewQuotas()
	for _, l := range levels {
		if msgs := alterQuotas(t, q, false, quotaEntry(l.entity, set(ProducerByteRate, l.value))); msgs[0] != nil {
			t.Fatal(*msgs[0])
		}
	}
	// Remove the levels one by one, most specific first: the next one applies.
	for i, l := range levels {
		v, from, ok := q.Limit("u", "c", ProducerByteRate)
		if !ok || v != l.value {
			t.Fatalf("level %d: %v %v (from %v)", i, v, ok, from)
		}
		alterQuotas(t, q, false, quotaEntry(l.entity, remove(ProducerByteRate)))
	}
	if _, _, ok := q.Limit("u", "c", ProducerByteRate); ok {
		t.Fatal("quota after removing all")
	}
	// Per key: a user's consumer quota does not hide the default producer one.
	alterQuotas(t, q, false,
		quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityUser, ptr("u"))}, set(ConsumerByteRate, 10)),
		quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityUser, nil)}, set(ProducerByteRate, 20)),
		quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityIP, nil)}, set(ConnectionCreationRate, 5)),
		quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityIP, ptr("10.0.0.1"))}, set(ConnectionCreationRate, 50)))
	if v, _, _ := q.Limit("u", "x", ProducerByteRate); v != 20 {
		t.Fatalf("producer quota %v", v)
	}
	if v, _, _ := q.Limit("other", "x", ConsumerByteRate); v != 0 {
		t.Fatalf("other user's consumer quota %v", v)
	}
	if v, _ := q.IPLimit("10.0.0.1"); v != 50 {
		t.Fatal(v)
	}
	if v, _ := q.IPLimit("10.0.0.2"); v != 5 {
		t.Fatal(v)
	}
}

func TestAlterClientQuotasValidation(t *testing.T) {
	user := []kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityUser, ptr("u"))}
	for _, tc := range []struct {
		name  string
		entry kmsg.AlterClientQuotasRequestEntry
		msg   string // "" for valid
	}{
		{"valid", quotaEntry(user, set(ProducerByteRate, 1024), set(RequestPercentage, 12.5)), ""},
		{"no entity", quotaEntry(nil, set(ProducerByteRate, 1)), "Invalid empty client quota entity"},
		{"unknown type", quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent("group", ptr("g"))}, set(ProducerByteRate, 1)),
			"Unhandled client quota entity type: group"},
		{"type twice", quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityUser, ptr("a")), ent(EntityUser, ptr("b"))}, set(ProducerByteRate, 1)),
			"Invalid client quota entity, duplicate entity entry user"},
		{"empty name", quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityClientID, ptr(""))}, set(ProducerByteRate, 1)),
			"Empty client-id not supported"},
		{"ip with user", quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityIP, ptr("1.2.3.4")), ent(EntityUser, ptr("u"))}, set(ConnectionCreationRate, 1)),
			"Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"},
		{"bad ip", quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityIP, ptr("not-an-ip"))}, set(ConnectionCreationRate, 1)),
			"not-an-ip is not a valid IP or resolvable host."},
		{"ip key on user", quotaEntry(user, set(ConnectionCreationRate, 1)), "Invalid configuration key connection_creation_rate"},
		{"user key on ip", quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityIP, nil)}, set(ProducerByteRate, 1)),
			"Invalid configuration key producer_byte_rate"},
		{"unknown key", quotaEntry(user, set("bytes", 1)), "Invalid configuration key bytes"},
		{"zero", quotaEntry(user, set(ProducerByteRate, 0)), "Quota producer_byte_rate must be greater than 0"},
		{"negative", quotaEntry(user, set(RequestPercentage, -1)), "Quota request_percentage must be greater than 0"},
		{"fraction for a long", quotaEntry(user, set(ConsumerByteRate, 1.5)), "consumer_byte_rate cannot be a fractional value."},
		{"key twice", quotaEntry(user, set(ProducerByteRate, 1), remove(ProducerByteRate)),
			"Duplicate quota key producer_byte_rate not updating quota for this entity user=u"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := NewQuotas()
			msgs := alterQuotas(t, q, false, tc.entry)
			_, _, applied := q.Limit("u", "c", ProducerByteRate)
			if tc.msg == "" {
				if msgs[0] != nil || !applied {
					t.Fatalf("refused: %v", *msgs[0])
				}
				return
			}
			if msgs[0] == nil || *msgs[0] != tc.msg || applied {
				t.Fatalf("got %v (applied %v), want %q", msgs[0], applied, tc.msg)
			}
		})
	}
	q := NewQuotas()
	if msgs := alterQuotas(t, q, true, quotaEntry(user, set(ProducerByteRate, 5))); msgs[0] != nil {
		t.Fatal(*msgs[0])
	}
	if _, _, ok := q.Limit("u", "c", ProducerByteRate); ok {
		t.Fatal("validate-only applied")
	}
	msgs := alterQuotas(t, q, false, quotaEntry(user, set(ProducerByteRate, 5)),
		quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityUser, ptr("v"))}, set(ProducerByteRate, 5)),
		quotaEntry(user, set(ConsumerByteRate, 5)))
	if msgs[0] == nil || *msgs[0] != "Ignoring duplicate entity user=u" || msgs[1] != nil || msgs[2] == nil {
		t.Fatalf("duplicate entity: %v", msgs)
	}
	if _, _, ok := q.Limit("u", "c", ProducerByteRate); ok {
		t.Fatal("duplicate entity applied")
	}
}

func TestDescribeClientQuotas(t *testing.T) {
	q := NewQuotas()
	alterQuotas(t, q, false,
		quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityUser, ptr("alice"))}, set(ProducerByteRate, 1)),
		quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityUser, ptr("alice")), ent(EntityClientID, ptr("app"))}, set(ConsumerByteRate, 2), set(RequestPercentage, 3)),
		quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityUser, nil)}, set(ProducerByteRate, 4)),
		quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityClientID, nil)}, set(ProducerByteRate, 5)),
		quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityIP, ptr("1.2.3.4"))}, set(ConnectionCreationRate, 6)))
	comp := func(typ string, mt kmsg.QuotasMatchType, match *string) kmsg.DescribeClientQuotasRequestComponent {
		c := kmsg.NewDescribeClientQuotasRequestComponent()
		c.EntityType, c.MatchType, c.Match = typ, mt, match
		return c
	}
	for _, tc := range []struct {
		name   string
		comps  []kmsg.DescribeClientQuotasRequestComponent
		strict bool
		want   []string // entities, or the error message
		err    bool
	}{
		{"all", nil, false, []string{"client-id=<default>", "ip=1.2.3.4", "user=<default>", "user=alice", "user=alice,client-id=app"}, false},
		{"exact user", []kmsg.DescribeClientQuotasRequestComponent{comp(EntityUser, kmsg.QuotasMatchTypeExact, ptr("alice"))}, false,
			[]string{"user=alice", "user=alice,client-id=app"}, false},
		{"exact user strict", []kmsg.DescribeClientQuotasRequestComponent{comp(EntityUser, kmsg.QuotasMatchTypeExact, ptr("alice"))}, true,
			[]string{"user=alice"}, false},
		{"default user", []kmsg.DescribeClientQuotasRequestComponent{comp(EntityUser, kmsg.QuotasMatchTypeDefault, nil)}, false,
			[]string{"user=<default>"}, false},
		{"any client", []kmsg.DescribeClientQuotasRequestComponent{comp(EntityClientID, kmsg.QuotasMatchTypeAny, nil)}, false,
			[]string{"client-id=<default>", "user=alice,client-id=app"}, false},
		// ClientQuotasImage.describe: an entity must pass every component
		// (a union would add user=alice and client-id=<default>).
		{"user and any client", []kmsg.DescribeClientQuotasRequestComponent{comp(EntityUser, kmsg.QuotasMatchTypeExact, ptr("alice")), comp(EntityClientID, kmsg.QuotasMatchTypeAny, nil)}, false,
			[]string{"user=alice,client-id=app"}, false},
		{"default user and default client", []kmsg.DescribeClientQuotasRequestComponent{comp(EntityUser, kmsg.QuotasMatchTypeDefault, nil), comp(EntityClientID, kmsg.QuotasMatchTypeDefault, nil)}, false,
			nil, false},
		{"exact without match", []kmsg.DescribeClientQuotasRequestComponent{comp(EntityUser, kmsg.QuotasMatchTypeExact, nil)}, false,
			[]string{"Request specified MATCH_TYPE_EXACT, but set match string to null."}, true},
		{"default with match", []kmsg.DescribeClientQuotasRequestComponent{comp(EntityUser, kmsg.QuotasMatchTypeDefault, ptr("x"))}, false,
			[]string{"Request specified MATCH_TYPE_DEFAULT, but also specified a match string."}, true},
		{"type twice", []kmsg.DescribeClientQuotasRequestComponent{comp(EntityUser, kmsg.QuotasMatchTypeAny, nil), comp(EntityUser, kmsg.QuotasMatchTypeAny, nil)}, false,
			[]string{"Entity type user cannot appear more than once in the filter."}, true},
		{"any with match", []kmsg.DescribeClientQuotasRequestComponent{comp(EntityUser, kmsg.QuotasMatchTypeAny, ptr("x"))}, false,
			[]string{"Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."}, true},
		{"ip with user", []kmsg.DescribeClientQuotasRequestComponent{comp(EntityIP, kmsg.QuotasMatchTypeAny, nil), comp(EntityUser, kmsg.QuotasMatchTypeAny, nil)}, false,
			[]string{"Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component."}, true},
		{"unknown type", []kmsg.DescribeClientQuotasRequestComponent{comp("group", kmsg.QuotasMatchTypeAny, nil)}, false,
			[]string{"Unsupported entity type group"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrDescribeClientQuotasRequest()
			req.Components, req.Strict = tc.comps, tc.strict
			resp := q.Describe(req)
			if tc.err {
				code := kerr.InvalidRequest.Code
				if tc.name == "unknown type" {
					code = kerr.UnsupportedVersion.Code
				}
				if resp.ErrorCode != code || *resp.ErrorMessage != tc.want[0] {
					t.Fatalf("%d %v", resp.ErrorCode, resp.ErrorMessage)
				}
				return
			}
			var got []string
			for _, e := range resp.Entries {
				var qe QuotaEntity
				for _, d := range e.Entity {
					switch d.Type {
					case EntityUser:
						qe.HasUser, qe.User = true, d.Name
					case EntityClientID:
						qe.HasClient, qe.ClientID = true, d.Name
					case EntityIP:
						qe.HasIP, qe.IP = true, d.Name
					}
				}
				got = append(got, qe.String())
				if len(e.Values) == 0 {
					t.Fatalf("%s without values", qe)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestThrottleTime(t *testing.T) {
	for _, tc := range []struct {
		observed, limit float64
		window          time.Duration
		want            time.Duration
	}{
		{100, 100, 11 * time.Second, 0},
		{50, 100, 11 * time.Second, 0},
		{150, 100, 10 * time.Second, 5 * time.Second},
		{300, 100, time.Second, 2 * time.Second},
		{100.5, 100, 11 * time.Second, 55 * time.Millisecond},
	} {
		if got := ThrottleTime(tc.observed, tc.limit, tc.window); got != tc.want {
			t.Errorf("ThrottleTime(%v, %v, %v) = %v, want %v", tc.observed, tc.limit, tc.window, got, tc.want)
		}
	}
}

func TestSampledRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := NewSampledRate(QuotaSamples, QuotaWindow)
	// A first burst is measured over at least 10 windows, not over 0 s.
	if d := r.RecordAndThrottle(t0, 1000, 100); d != 0 {
		t.Fatalf("1000 B in the first ms throttled %v", d)
	}
	if got := r.Rate(t0); got != 100 {
		t.Fatalf("rate %v, want 100", got)
	}
	// 1100 B more half a second later: 2100 B over 10.5 s = 200 B/s, 100%
	// over the quota, so 100% of the 10.5 s window.
	if d := r.RecordAndThrottle(t0.Add(500*time.Millisecond), 1100, 100); d != 10500*time.Millisecond {
		t.Fatalf("throttle %v, want 10.5s", d)
	}
	// Twelve seconds later every window has expired.
	if got := r.Rate(t0.Add(12 * time.Second)); got != 0 {
		t.Fatalf("rate after expiry %v", got)
	}
	// A steady 90 B/s for 30 s is never throttled (one exactly at the quota
	// is, briefly, at each window boundary, as in Kafka: the newest window's
	// first bytes count against ten full windows); a burst is.
	r = NewSampledRate(QuotaSamples, QuotaWindow)
	var throttled time.Duration
	for i := range 300 {
		throttled += r.RecordAndThrottle(t0.Add(time.Duration(i)*100*time.Millisecond), 9, 100)
	}
	if throttled != 0 {
		t.Fatalf("steady rate throttled %v", throttled)
	}
	now := t0.Add(30 * time.Second)
	d := r.RecordAndThrottle(now, 1000, 100)
	rate := r.Rate(now)
	if rate <= 100 || d == 0 {
		t.Fatalf("burst: rate %v throttle %v", rate, d)
	}
	// 900 B of steady traffic plus the 1000 B burst over 10 s: 190 B/s,
	// 90% over, 90% of the 10 s window.
	if rate != 190 || d != 9*time.Second {
		t.Fatalf("burst: rate %v throttle %v, want 190 and 9s", rate, d)
	}
}

func TestQuotasRecord(t *testing.T) {
	q := NewQuotas()
	alterQuotas(t, q, false,
		quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityClientID, nil)}, set(ProducerByteRate, 100)),
		quotaEntry([]kmsg.AlterClientQuotasRequestEntryEntity{ent(EntityUser, ptr("shared"))}, set(ProducerByteRate, 100)))
	t0 := time.Unix(1000, 0)
	// The default client-id quota applies to each client on its own.
	if d := q.Record(t0, "u", "a", ProducerByteRate, 1000); d != 0 {
		t.Fatal(d)
	}
	if d := q.Record(t0, "u", "b", ProducerByteRate, 1000); d != 0 {
		t.Fatalf("client b throttled by client a's bytes: %v", d)
	}
	if d := q.Record(t0, "u", "a", ProducerByteRate, 1000); d != 10*time.Second {
		t.Fatalf("client a: %v", d)
	}
	// A user's quota is shared by all of that user's clients.
	q.Record(t0, "shared", "a", ProducerByteRate, 1000)
	if d := q.Record(t0, "shared", "b", ProducerByteRate, 1000); d != 10*time.Second {
		t.Fatalf("shared user: %v", d)
	}
	// No quota: never throttled.
	if d := q.Record(t0, "u", "a", ConsumerByteRate, 1e12); d != 0 {
		t.Fatal(d)
	}
	// Idle rates are forgotten after an hour, busy ones kept.
	q.Record(t0.Add(QuotaIdleExpiry), "u", "b", ProducerByteRate, 1)
	q.ExpireIdle(t0.Add(QuotaIdleExpiry + time.Second))
	if len(q.rates) != 1 {
		t.Fatalf("%d rates after expiry, want 1", len(q.rates))
	}
	if d := q.Record(t0.Add(QuotaIdleExpiry+time.Second), "u", "a", ProducerByteRate, 1000); d != 0 {
		t.Fatalf("expired client a still throttled: %v", d)
	}
}

func TestRecordConnection(t *testing.T) {
	q := NewQuotasWindows(2, time.Second)
	now := time.Unix(1000, 0)
	if d := q.RecordConnection(now, "10.0.0.1"); d != 0 {
		t.Fatalf("throttled without a quota: %v", d)
	}
	req := kmsg.NewPtrAlterClientQuotasRequest()
	e := kmsg.NewAlterClientQuotasRequestEntry()
	e.Entity = []kmsg.AlterClientQuotasRequestEntryEntity{{Type: EntityIP}}
	e.Ops = []kmsg.AlterClientQuotasRequestEntryOp{{Key: ConnectionCreationRate, Value: 2}}
	req.Entries = append(req.Entries, e)
	if r := q.Alter(req); r.Entries[0].ErrorCode != 0 {
		t.Fatal(*r.Entries[0].ErrorMessage)
	}
	// The default ip quota of 2/s over 1 s (2 windows, one counted at
	// least): the first two connections pass, the third is throttled.
	for i := range 2 {
		if d := q.RecordConnection(now, "10.0.0.1"); d != 0 {
			t.Fatalf("connection %d throttled %v", i, d)
		}
	}
	if d := q.RecordConnection(now, "10.0.0.1"); d != 500*time.Millisecond {
		t.Errorf("third connection: throttle %v, want 500ms ((3-2)/2 × 1 s)", d)
	}
	if d := q.RecordConnection(now, "10.0.0.2"); d != 0 {
		t.Errorf("another ip throttled %v: the rate is per ip", d)
	}
}
