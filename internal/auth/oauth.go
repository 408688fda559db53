package auth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kafkit/kafkit/internal/props"
)

// OAuthBearerOptions configure Kafka's unsecured JWS validator
// (OAuthBearerUnsecuredValidatorCallbackHandler), a development mechanism:
// tokens are not signed.
type OAuthBearerOptions struct {
	PrincipalClaimName string        // unsecuredValidatorPrincipalClaimName, default "sub"
	ScopeClaimName     string        // unsecuredValidatorScopeClaimName, default "scope"
	RequiredScope      []string      // unsecuredValidatorRequiredScope, space-delimited
	AllowableClockSkew time.Duration // unsecuredValidatorAllowableClockSkewMs, default 0
}

// ParseOAuthBearerJAAS reads the unsecuredValidator* options of a broker's
// listener.name.<l>.oauthbearer.sasl.jaas.config value.
func ParseOAuthBearerJAAS(jaas string) (OAuthBearerOptions, error) {
	var o OAuthBearerOptions
	for _, opt := range props.JAASOptions(jaas) {
		v := strings.TrimSpace(opt.Value)
		switch opt.Key {
		case "unsecuredValidatorPrincipalClaimName":
			o.PrincipalClaimName = v
		case "unsecuredValidatorScopeClaimName":
			o.ScopeClaimName = v
		case "unsecuredValidatorRequiredScope":
			o.RequiredScope = strings.Fields(v)
		case "unsecuredValidatorAllowableClockSkewMs":
			ms, err := strconv.ParseInt(v, 10, 32)
			if err != nil || ms < 0 {
				return o, fmt.Errorf("unsecuredValidatorAllowableClockSkewMs must be a non-negative integer; got %q", opt.Value)
			}
			o.AllowableClockSkew = time.Duration(ms) * time.Millisecond
		}
	}
	return o, nil
}

// oauthClientFirst is RFC 7628's initial client response as Kafka's
// OAuthBearerSaslServer accepts it: gs2 header, then \x01-separated
// key=value pairs, the first auth=Bearer <token>, ending in \x01\x01.
var oauthClientFirst = regexp.MustCompile(
	"^n,(?:a=((?:[\x01-\x2b\x2d-\x3c\x3e-\x7f]|=2C|=3D)+))?,\x01auth=([A-Za-z0-9_]+) +([-_.a-zA-Z0-9]+)\x01((?:[A-Za-z]+=[\x21-\x7E \t\r\n]+\x01)*)\x01$")

// oauthServer validates one unsecured JWS; on an invalid token it answers
// Kafka's JSON error challenge and fails when the client acknowledges it
// with \x01.
type oauthServer struct {
	opts    OAuthBearerOptions
	now     func() time.Time
	errJSON string // the last error challenge, until the client answers
	ended   bool
	expiry  time.Time
}

// NewOAuthBearerServer returns the server side of an OAUTHBEARER exchange
// with the unsecured validator; now is the clock that exp and iat are
// checked against.
func NewOAuthBearerServer(opts OAuthBearerOptions, now func() time.Time) Server {
	if opts.PrincipalClaimName == "" {
		opts.PrincipalClaimName = "sub"
	}
	if opts.ScopeClaimName == "" {
		opts.ScopeClaimName = "scope"
	}
	return &oauthServer{opts: opts, now: now}
}

// Expiry is when the authenticated token expires: the credential lifetime
// that bounds SaslAuthenticate's SessionLifetimeMs (KIP-368).
func (s *oauthServer) Expiry() time.Time { return s.expiry }

func (s *oauthServer) Step(token []byte) ([]byte, bool, Principal, error) {
	if s.ended {
		return nil, false, Principal{}, errStepAfterDone
	}
	if string(token) == "\x01" && s.errJSON != "" {
		s.ended = true
		return nil, false, Principal{}, &AuthError{Message: s.errJSON, Detail: "OAUTHBEARER token refused"}
	}
	s.errJSON = ""
	m := oauthClientFirst.FindSubmatch(token)
	if m == nil {
		s.ended = true
		return nil, false, Principal{}, failed(MechanismOAuthBearer, "invalid OAUTHBEARER client first message")
	}
	if !strings.EqualFold(string(m[2]), "bearer") {
		s.ended = true
		return nil, false, Principal{}, failed(MechanismOAuthBearer, "invalid scheme %q", m[2])
	}
	principal, expiry, status, scope := s.validate(string(m[3]))
	if status != "" {
		s.errJSON = `{"status":"` + status + `"`
		if scope != "" {
			s.errJSON += `, "scope":"` + scope + `"`
		}
		s.errJSON += "}"
		return []byte(s.errJSON), false, Principal{}, nil
	}
	s.ended = true
	authzid, _ := unescapeSASLName(string(m[1]))
	if authzid != "" && authzid != principal {
		return nil, false, Principal{}, &AuthError{
			Message: "Authentication failed: Client requested an authorization id that is different from the token's principal name",
			Detail:  "OAUTHBEARER authzid " + authzid + " for principal " + principal,
		}
	}
	s.expiry = expiry
	return nil, true, User(principal), nil
}

// validate checks an unsecured JWS as OAuthBearerUnsecuredJws and
// OAuthBearerValidationUtils do. A failure returns the status of the error
// challenge (invalid_token, or insufficient_scope with the scope needed).
func (s *oauthServer) validate(jws string) (principal string, expiry time.Time, status, scope string) {
	const invalid = "invalid_token"
	parts := strings.Split(jws, ".")
	if len(parts) != 3 || parts[2] != "" {
		return "", expiry, invalid, ""
	}
	var header map[string]any
	if !decodeJWSPart(parts[0], &header) || header["alg"] != "none" {
		return "", expiry, invalid, ""
	}
	var claims map[string]any
	if !decodeJWSPart(parts[1], &claims) {
		return "", expiry, invalid, ""
	}
	principal, ok := claims[s.opts.PrincipalClaimName].(string)
	if !ok || strings.TrimSpace(principal) == "" {
		return "", expiry, invalid, ""
	}
	now := s.now()
	skew := s.opts.AllowableClockSkew
	iat, hasIat, ok := numericDate(claims, "iat")
	if !ok || hasIat && iat.After(now.Add(skew)) {
		return "", expiry, invalid, ""
	}
	exp, hasExp, ok := numericDate(claims, "exp")
	if !ok || !hasExp || !now.Before(exp.Add(skew)) || hasIat && !exp.After(iat) {
		return "", expiry, invalid, ""
	}
	granted, ok := tokenScope(claims[s.opts.ScopeClaimName])
	if !ok {
		return "", expiry, invalid, ""
	}
	for _, need := range s.opts.RequiredScope {
		if !slices.Contains(granted, need) {
			return "", expiry, "insufficient_scope", strings.Join(s.opts.RequiredScope, " ")
		}
	}
	return principal, exp, "", ""
}

// decodeJWSPart decodes one base64url JSON object of a JWS.
func decodeJWSPart(part string, v *map[string]any) bool {
	b, err := base64.RawURLEncoding.DecodeString(part)
	return err == nil && json.Unmarshal(b, v) == nil && *v != nil
}

// numericDate reads an optional JWT NumericDate (seconds, maybe
// fractional); ok is false when the claim is present but not a number.
func numericDate(claims map[string]any, name string) (t time.Time, present, ok bool) {
	v, present := claims[name]
	if !present {
		return t, false, true
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.Abs(f) > math.MaxInt64/1e9 {
		return t, true, false
	}
	return time.UnixMilli(int64(f * 1000)), true, true
}

// tokenScope reads a scope claim: absent, a space-delimited string, or a
// list of strings.
func tokenScope(v any) ([]string, bool) {
	switch v := v.(type) {
	case nil:
		return nil, true
	case string:
		return strings.Fields(v), true
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}
