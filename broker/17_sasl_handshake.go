package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslHandshake: v0-1. On a SASL listener the connection's authenticator
// (sasl_conn.go) serves it before authentication and for a
// re-authentication; what reaches this handler comes on a PLAINTEXT or SSL
// listener or from a client that cannot re-authenticate, and gets Kafka's
// KafkaApis answer: ILLEGAL_SASL_STATE with no mechanisms.
var saslHandshakeVersions = versions{0, 1}

func (b *Broker) handleSaslHandshake(_ *reqCtx, req *kmsg.SASLHandshakeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.ErrorCode = kerr.IllegalSaslState.Code
	return resp, nil
}
