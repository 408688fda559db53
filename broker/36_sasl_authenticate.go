package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslAuthenticate: v0-2. The authenticator (sasl_conn.go) serves it while
// a SASL connection authenticates; after that, or on a listener without
// SASL, Kafka answers ILLEGAL_SASL_STATE with this message.
var saslAuthenticateVersions = versions{0, 2}

func (b *Broker) handleSaslAuthenticate(_ *reqCtx, req *kmsg.SASLAuthenticateRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	resp.ErrorCode = kerr.IllegalSaslState.Code
	msg := "SaslAuthenticate request received after successful authentication"
	resp.ErrorMessage = &msg
	return resp, nil
}
