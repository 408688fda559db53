package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterClientQuotas: v0-1 (v1 is flexible). Needs ALTER_CONFIGS on the
// cluster; entries are validated as Kafka's ClientQuotaControlManager does
// and the quotas are stored before the answer.
var alterClientQuotasVersions = versions{0, 1}

func (b *Broker) handleAlterClientQuotas(rc *reqCtx, req *kmsg.AlterClientQuotasRequest) (kmsg.Response, error) {
	if !b.allowedCluster(rc, kmsg.ACLOperationAlterConfigs) {
		return alterQuotasFailed(req, kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Description), nil
	}
	resp, err := b.alterQuotas(req)
	if err != nil {
		b.log.Error("storing client quotas", "err", err)
		return alterQuotasFailed(req, kafkaErr(err), err.Error()), nil
	}
	return resp, nil
}

// alterQuotasFailed answers every entry with e.
func alterQuotasFailed(req *kmsg.AlterClientQuotasRequest, e *kerr.Error, msg string) *kmsg.AlterClientQuotasResponse {
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	for _, entry := range req.Entries {
		r := kmsg.NewAlterClientQuotasResponseEntry()
		r.ErrorCode, r.ErrorMessage = e.Code, kmsg.StringPtr(msg)
		for _, ent := range entry.Entity {
			r.Entity = append(r.Entity, kmsg.AlterClientQuotasResponseEntryEntity{Type: ent.Type, Name: ent.Name})
		}
		resp.Entries = append(resp.Entries, r)
	}
	return resp
}
