package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions: v0-4 (v3+ flexible, KIP-511 client name/version). A request
// at a newer version is answered at v0 with UNSUPPORTED_VERSION and our
// ranges (conn.handle), as Kafka does. v3+ carries the supported and
// finalized features (features.go).
var apiVersionsVersions = versions{0, 4}

func (b *Broker) apiKeys() []kmsg.ApiVersionsResponseApiKey {
	var keys []kmsg.ApiVersionsResponseApiKey
	for key, h := range b.handlers {
		if h == nil {
			continue
		}
		k := kmsg.ApiVersionsResponseApiKey{ApiKey: int16(key), MinVersion: h.min, MaxVersion: h.max}
		if k.ApiKey == int16(kmsg.Produce) {
			k.MinVersion = produceAPIVersionsMin
		}
		keys = append(keys, k)
	}
	return keys
}

func (b *Broker) handleAPIVersions(rc *reqCtx, req *kmsg.ApiVersionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = b.apiKeys()
	b.setAPIVersionsFeatures(resp, rc.version)
	return resp, nil
}

func (b *Broker) apiVersionsUnsupported() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = b.apiKeys()
	return resp
}
