package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslHandshake: v0-1. kafkit listens in PLAINTEXT only; as on a Kafka
// PLAINTEXT listener the request reaches the API layer of an already
// "authenticated" connection, which answers ILLEGAL_SASL_STATE with no
// mechanisms, so a client configured for SASL gets a clear error instead of
// a closed connection.
var saslHandshakeVersions = versions{0, 1}

func (b *Broker) handleSaslHandshake(_ *reqCtx, req *kmsg.SASLHandshakeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.ErrorCode = kerr.IllegalSaslState.Code
	return resp, nil
}
