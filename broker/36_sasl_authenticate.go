package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslAuthenticate: v0-2. Answered as a Kafka PLAINTEXT listener answers
// it: ILLEGAL_SASL_STATE, with Kafka's message.
var saslAuthenticateVersions = versions{0, 2}

func (b *Broker) handleSaslAuthenticate(_ *reqCtx, req *kmsg.SASLAuthenticateRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	resp.ErrorCode = kerr.IllegalSaslState.Code
	msg := "SaslAuthenticate request received after successful authentication"
	resp.ErrorMessage = &msg
	return resp, nil
}
