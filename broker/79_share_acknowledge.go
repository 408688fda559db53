package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/share"
)

// ShareAcknowledge: v1-2, Kafka 4.1+'s stable versions; v2 adds RENEW
// (KIP-1222) and the lock duration in the response.
var shareAcknowledgeVersions = versions{1, 2}

func (b *Broker) handleShareAcknowledge(rc *reqCtx, req *kmsg.ShareAcknowledgeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
	if b.cluster != nil {
		defer b.cluster.shareAckEndpoints(rc, resp)
	}
	group, member := deref(req.GroupID), deref(req.MemberID)
	resp.AcquisitionLockTimeoutMillis = int32(b.shareGroupConfig(group).Lock / time.Millisecond)
	if group == "" || member == "" || len(member) > 36 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	renew := rc.version >= 2 && req.IsRenewAck
	var acks []shareAck
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			var first, last []int64
			var types [][]int8
			for _, ab := range p.AcknowledgementBatches {
				first, last, types = append(first, ab.FirstOffset), append(last, ab.LastOffset), append(types, ab.AcknowledgeTypes)
			}
			batches, e := shareAckBatches(first, last, types, renew)
			if e != nil {
				resp.ErrorCode = e.Code
				return resp, nil
			}
			acks = append(acks, shareAck{tp: share.TP{Topic: t.TopicID, Partition: p.Partition}, batches: batches})
		}
	}
	var e *kerr.Error
	if req.ShareSessionEpoch == -1 {
		e = b.share.CheckClose(group, member)
	} else {
		e = b.share.AckSession(group, member, req.ShareSessionEpoch)
	}
	if e != nil {
		resp.ErrorCode = e.Code
		return resp, nil
	}
	b.applyShareAcks(group, member, acks, func(tp share.TP, code int16, leader shareLeader) {
		ti := -1
		for i := range resp.Topics {
			if resp.Topics[i].TopicID == tp.Topic {
				ti = i
			}
		}
		if ti < 0 {
			t := kmsg.NewShareAcknowledgeResponseTopic()
			t.TopicID = tp.Topic
			resp.Topics = append(resp.Topics, t)
			ti = len(resp.Topics) - 1
		}
		p := kmsg.NewShareAcknowledgeResponseTopicPartition()
		p.Partition, p.ErrorCode = tp.Partition, code
		p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = leader.id, leader.epoch
		resp.Topics[ti].Partitions = append(resp.Topics[ti].Partitions, p)
	})
	if req.ShareSessionEpoch == -1 {
		b.share.CloseSession(group, member)
	}
	return resp, nil
}
