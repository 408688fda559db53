package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
)

// SCRAM iteration bounds that Kafka accepts (ScramMechanism's minimum and
// AlterUserScramCredentials' maximum).
const (
	MinSCRAMIterations = 4096
	MaxSCRAMIterations = 16384
)

// SCRAMCredential is what a broker stores for one user and mechanism
// (RFC 5802 section 3): never the password.
type SCRAMCredential struct {
	Salt       []byte
	StoredKey  []byte // H(HMAC(SaltedPassword, "Client Key"))
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
	Iterations int32
}

// scramHash returns the hash of a SCRAM mechanism name, or nil.
func scramHash(mechanism string) func() hash.Hash {
	switch mechanism {
	case MechanismSCRAMSHA256:
		return sha256.New
	case MechanismSCRAMSHA512:
		return sha512.New
	}
	return nil
}

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// NewSCRAMCredential derives the credential of password (what
// kafka-configs.sh --add-config 'SCRAM-SHA-256=[password=...]' stores).
func NewSCRAMCredential(mechanism, password string, salt []byte, iterations int32) (SCRAMCredential, error) {
	h := scramHash(mechanism)
	if h == nil {
		return SCRAMCredential{}, fmt.Errorf("unsupported SCRAM mechanism %q", mechanism)
	}
	salted, err := pbkdf2.Key(h, password, salt, int(iterations), h().Size())
	if err != nil {
		return SCRAMCredential{}, err
	}
	return SaltedSCRAMCredential(mechanism, salt, salted, iterations), nil
}

// SaltedSCRAMCredential derives the credential from a salted password, as
// AlterUserScramCredentials sends it; mechanism must be a SCRAM mechanism.
func SaltedSCRAMCredential(mechanism string, salt, saltedPassword []byte, iterations int32) SCRAMCredential {
	h := scramHash(mechanism)
	clientKey := hmacSum(h, saltedPassword, "Client Key")
	stored := h()
	stored.Write(clientKey)
	return SCRAMCredential{
		Salt:       bytes.Clone(salt),
		StoredKey:  stored.Sum(nil),
		ServerKey:  hmacSum(h, saltedPassword, "Server Key"),
		Iterations: iterations,
	}
}

// CredentialLookup finds the SCRAM credential of user for a mechanism.
type CredentialLookup func(user, mechanism string) (SCRAMCredential, bool)

type scramState int8

const (
	scramClientFirst scramState = iota
	scramClientFinal
	scramEnded
)

// scramServer is the server side of RFC 5802 / RFC 7677 without channel
// binding, with Kafka's ScramSaslServer's checks.
type scramServer struct {
	mechanism string
	h         func() hash.Hash
	lookup    CredentialLookup
	rand      io.Reader

	state       scramState
	user        string
	clientBare  string
	serverFirst string
	nonce       string
	cred        SCRAMCredential
}

// NewSCRAMServer returns the server side of a SCRAM-SHA-256 or
// SCRAM-SHA-512 exchange; rand supplies the server nonce (crypto/rand.Reader
// in the broker, a fixed reader in tests).
func NewSCRAMServer(mechanism string, lookup CredentialLookup, rand io.Reader) (Server, error) {
	h := scramHash(mechanism)
	if h == nil {
		return nil, fmt.Errorf("unsupported SCRAM mechanism %q", mechanism)
	}
	return &scramServer{mechanism: mechanism, h: h, lookup: lookup, rand: rand}, nil
}

func (s *scramServer) Step(token []byte) ([]byte, bool, Principal, error) {
	var challenge []byte
	var err error
	switch s.state {
	case scramClientFirst:
		if challenge, err = s.clientFirst(string(token)); err == nil {
			s.state = scramClientFinal
			return challenge, false, Principal{}, nil
		}
	case scramClientFinal:
		challenge, err = s.clientFinal(string(token))
	default:
		return nil, false, Principal{}, errStepAfterDone
	}
	// The exchange is over either way; drop the credential.
	s.state, s.cred = scramEnded, SCRAMCredential{}
	if err != nil {
		return nil, false, Principal{}, err
	}
	return challenge, true, User(s.user), nil
}

// clientFirst handles `n,[a=authzid],n=<saslname>,r=<nonce>[,ext...]`.
func (s *scramServer) clientFirst(msg string) ([]byte, error) {
	rest, ok := strings.CutPrefix(msg, "n,")
	if !ok {
		return nil, failed(s.mechanism, "client-first message without gs2 header n,")
	}
	authzAttr, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, failed(s.mechanism, "client-first message without bare part")
	}
	var authzid string
	if authzAttr != "" {
		if authzid, ok = strings.CutPrefix(authzAttr, "a="); !ok {
			return nil, failed(s.mechanism, "bad authzid attribute")
		}
		if authzid, ok = unescapeSASLName(authzid); !ok {
			return nil, failed(s.mechanism, "bad authzid escape")
		}
	}
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, failed(s.mechanism, "client-first message without n= and r=")
	}
	user, ok := unescapeSASLName(attrs[0][2:])
	cnonce := attrs[1][2:]
	if !ok || user == "" || !printableNonce(cnonce) {
		return nil, failed(s.mechanism, "bad user name or nonce")
	}
	// Checked before the lookup (Kafka checks after it) so that the answer
	// never depends on whether the user exists.
	if authzid != "" && authzid != user {
		return nil, &AuthError{
			Message: "Authentication failed: Client requested an authorization id that is different from username",
			Detail:  s.mechanism + " authzid " + authzid + " for user " + user,
		}
	}
	cred, ok := s.lookup(user, s.mechanism)
	if !ok {
		return nil, failed(s.mechanism, "no %s credential for user %q", s.mechanism, user)
	}
	if cred.Iterations < MinSCRAMIterations {
		return nil, failed(s.mechanism, "iterations %d below the minimum %d", cred.Iterations, MinSCRAMIterations)
	}
	snonce := make([]byte, 24)
	if _, err := io.ReadFull(s.rand, snonce); err != nil {
		return nil, failed(s.mechanism, "server nonce: %v", err)
	}
	s.user, s.cred, s.clientBare = user, cred, bare
	s.nonce = cnonce + base64.RawStdEncoding.EncodeToString(snonce)
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(cred.Salt) +
		",i=" + strconv.Itoa(int(cred.Iterations))
	return []byte(s.serverFirst), nil
}

// clientFinal handles `c=<b64 gs2 header>,r=<nonce>[,ext...],p=<proof>`.
func (s *scramServer) clientFinal(msg string) ([]byte, error) {
	without, proofAttr, ok := cutLast(msg, ",p=")
	if !ok {
		return nil, failed(s.mechanism, "client-final message without proof")
	}
	attrs := strings.Split(without, ",")
	// Like Kafka, accept any gs2 header without channel binding: franz-go
	// sends c=biws even when its client-first message carried an authzid.
	cbind, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(attrs[0], "c="))
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || err != nil || !bytes.HasPrefix(cbind, []byte("n,")) {
		return nil, failed(s.mechanism, "client-final message with bad channel binding")
	}
	// Kafka's ScramSaslServer only checks that the nonce ends with the
	// server-first nonce: librdkafka sends its client nonce in front of it
	// again, and the proof covers the message as sent.
	if !strings.HasPrefix(attrs[1], "r=") || !strings.HasSuffix(attrs[1], s.nonce) {
		return nil, failed(s.mechanism, "invalid client nonce in the final client message")
	}
	proof, err := base64.StdEncoding.DecodeString(proofAttr)
	if err != nil || len(proof) != s.h().Size() {
		return nil, failed(s.mechanism, "bad client proof encoding")
	}
	authMessage := s.clientBare + "," + s.serverFirst + "," + without
	clientKey := hmacSum(s.h, s.cred.StoredKey, authMessage)
	for i := range clientKey {
		clientKey[i] ^= proof[i]
	}
	stored := s.h()
	stored.Write(clientKey)
	if subtle.ConstantTimeCompare(stored.Sum(nil), s.cred.StoredKey) != 1 {
		return nil, failed(s.mechanism, "invalid client credentials for user %q", s.user)
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacSum(s.h, s.cred.ServerKey, authMessage))), nil
}

// cutLast splits s around the last sep.
func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// unescapeSASLName decodes RFC 5802's saslname: "=2C" is ',' and "=3D" is
// '='; any other '=' or a bare ',' is invalid.
func unescapeSASLName(s string) (string, bool) {
	if strings.Contains(s, ",") {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// printableNonce reports whether s is RFC 5802's printable: %x21-7E except ','.
func printableNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}
