package admin

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// SCRAM mechanisms as the credential APIs code them (Kafka's ScramMechanism).
var scramMechanisms = map[string]int8{"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}

func scramMechanismName(code int8) string {
	for name, c := range scramMechanisms {
		if c == code {
			return name
		}
	}
	return fmt.Sprintf("UNKNOWN(%d)", code)
}

// SCRAMCredentialInfo is what a broker tells about one of a user's SCRAM
// credentials: the mechanism and iterations, never the secret.
type SCRAMCredentialInfo struct {
	Mechanism  string
	Iterations int32
}

// DescribeUserSCRAMCredentials returns the SCRAM credentials of users (of
// every user with none). A user without credentials is an error that
// errors.Is kerr.ResourceNotFound.
func (c *Client) DescribeUserSCRAMCredentials(ctx context.Context, users ...string) (map[string][]SCRAMCredentialInfo, error) {
	req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	for _, u := range users {
		ru := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
		ru.Name = u
		req.Users = append(req.Users, ru)
	}
	resp, err := ask(ctx, c, c.cl.Request, "describe user scram credentials", req, func(r *kmsg.DescribeUserSCRAMCredentialsResponse) (int16, *string) {
		return r.ErrorCode, r.ErrorMessage
	})
	if err != nil {
		return nil, err
	}
	out := map[string][]SCRAMCredentialInfo{}
	var errs []error
	for _, r := range resp.Results {
		if err := kafkaErr("describe user scram credentials", r.User, r.ErrorCode, r.ErrorMessage); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ci := range r.CredentialInfos {
			out[r.User] = append(out[r.User], SCRAMCredentialInfo{scramMechanismName(ci.Mechanism), ci.Iterations})
		}
	}
	return out, errors.Join(errs...)
}

// SCRAMUpsertion creates or replaces a user's credential for a mechanism
// from a password, salted here as Kafka's admin client does: the password
// never leaves the client.
type SCRAMUpsertion struct {
	User       string
	Mechanism  string // SCRAM-SHA-256 or SCRAM-SHA-512
	Iterations int32  // 4096 when zero
	Password   string
}

// SCRAMDeletion removes a user's credential for a mechanism.
type SCRAMDeletion struct {
	User      string
	Mechanism string
}

// AlterUserSCRAMCredentials applies upserts and deletions on the
// controller; the error joins each user's refusal (DUPLICATE_RESOURCE,
// UNACCEPTABLE_CREDENTIAL, RESOURCE_NOT_FOUND, ...).
func (c *Client) AlterUserSCRAMCredentials(ctx context.Context, upserts []SCRAMUpsertion, deletes []SCRAMDeletion) error {
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	for _, u := range upserts {
		code, ok := scramMechanisms[u.Mechanism]
		if !ok {
			return fmt.Errorf("unknown SCRAM mechanism %q (want SCRAM-SHA-256 or SCRAM-SHA-512)", u.Mechanism)
		}
		iterations := u.Iterations
		if iterations == 0 {
			iterations = 4096
		}
		h := sha256.New
		if code == 2 {
			h = sha512.New
		}
		up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		up.Name, up.Mechanism, up.Iterations = u.User, code, iterations
		up.Salt = make([]byte, 32)
		rand.Read(up.Salt)
		var err error
		if up.SaltedPassword, err = saltPassword(h, u.Password, up.Salt, iterations); err != nil {
			return fmt.Errorf("salting %s's password: %w", u.User, err)
		}
		req.Upsertions = append(req.Upsertions, up)
	}
	for _, d := range deletes {
		code, ok := scramMechanisms[d.Mechanism]
		if !ok {
			return fmt.Errorf("unknown SCRAM mechanism %q (want SCRAM-SHA-256 or SCRAM-SHA-512)", d.Mechanism)
		}
		del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		del.Name, del.Mechanism = d.User, code
		req.Deletions = append(req.Deletions, del)
	}
	resp, err := askController(ctx, c, "alter user scram credentials", req, func(*kmsg.AlterUserSCRAMCredentialsResponse) (int16, *string) { return 0, nil })
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range resp.Results {
		errs = append(errs, kafkaErr("alter user scram credentials", r.User, r.ErrorCode, r.ErrorMessage))
	}
	return errors.Join(errs...)
}

// saltPassword is RFC 5802's Hi(password, salt, iterations); iterations
// outside what pbkdf2 accepts are left for the broker to refuse.
func saltPassword(h func() hash.Hash, password string, salt []byte, iterations int32) ([]byte, error) {
	if iterations < 1 {
		return make([]byte, h().Size()), nil
	}
	return pbkdf2.Key(h, password, salt, int(iterations), h().Size())
}
