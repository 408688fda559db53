package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeClientQuotas: v0-1 (v1 is flexible). Needs DESCRIBE_CONFIGS on
// the cluster; filters as Kafka's ClientQuotasImage.describe (every
// component must match).
var describeClientQuotasVersions = versions{0, 1}

func (b *Broker) handleDescribeClientQuotas(rc *reqCtx, req *kmsg.DescribeClientQuotasRequest) (kmsg.Response, error) {
	if !b.allowedCluster(rc, kmsg.ACLOperationDescribeConfigs) {
		resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
		resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
		return resp, nil
	}
	return b.quotas.q.Describe(req), nil
}
