package auth

import (
	"bytes"
	"crypto/subtle"
	"strings"

	"github.com/kafkit/kafkit/internal/props"
)

// PlainUsers maps PLAIN user names to passwords, as Kafka's JAAS config
// lists them (user_<name>="<password>").
type PlainUsers map[string]string

// ParsePlainJAAS reads the user_<name>="<password>" entries of a broker's
// listener.name.<l>.plain.sasl.jaas.config value.
func ParsePlainJAAS(jaas string) PlainUsers {
	users := PlainUsers{}
	for _, o := range props.JAASOptions(jaas) {
		if name, ok := strings.CutPrefix(o.Key, "user_"); ok {
			users[name] = o.Value
		}
	}
	return users
}

// plainServer is PLAIN's one-round exchange (RFC 4616), checked as Kafka's
// PlainSaslServer checks it.
type plainServer struct {
	users PlainUsers
	ended bool
}

// NewPlainServer returns the server side of a PLAIN exchange against users.
func NewPlainServer(users PlainUsers) Server { return &plainServer{users: users} }

// errPlainCredentials is PlainSaslServer's answer to a wrong password and
// to an unknown user alike.
var errPlainCredentials = &AuthError{
	Message: "Authentication failed: Invalid username or password",
	Detail:  "PLAIN: unknown user or wrong password",
}

func (s *plainServer) Step(token []byte) ([]byte, bool, Principal, error) {
	if s.ended {
		return nil, false, Principal{}, errStepAfterDone
	}
	s.ended = true
	parts := bytes.Split(token, []byte{0})
	if len(parts) != 3 {
		return nil, false, Principal{}, failed(MechanismPlain, "expected 3 NUL-separated tokens, got %d", len(parts))
	}
	authzid, user, pass := string(parts[0]), string(parts[1]), parts[2]
	if user == "" || len(pass) == 0 {
		return nil, false, Principal{}, failed(MechanismPlain, "empty username or password")
	}
	if authzid != "" && authzid != user {
		return nil, false, Principal{}, &AuthError{
			Message: "Authentication failed: Client requested an authorization id that is different from username",
			Detail:  "PLAIN authzid " + authzid + " for user " + user,
		}
	}
	want, ok := s.users[user]
	// Compare even for an unknown user so that timing does not tell.
	if subtle.ConstantTimeCompare([]byte(want), pass) != 1 || !ok {
		return nil, false, Principal{}, errPlainCredentials
	}
	return nil, true, User(user), nil
}
