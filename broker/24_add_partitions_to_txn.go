package broker

import (
	"cmp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddPartitionsToTxn: v0-5. v2 answers PRODUCER_FENCED (KIP-588; older
// versions get INVALID_PRODUCER_EPOCH), v3 is flexible, v4 batches several
// transactions with VerifyOnly (KIP-890, sent by brokers), v5 lets clients
// see TRANSACTION_ABORTABLE, which kafkit never sends.
var addPartitionsToTxnVersions = versions{0, 5}

func (b *Broker) handleAddPartitionsToTxn(rc *reqCtx, req *kmsg.AddPartitionsToTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if rc.version < 4 {
		topics := make([]kmsg.AddPartitionsToTxnRequestTransactionTopic, len(req.Topics))
		for i, t := range req.Topics {
			topics[i] = kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: t.Topic, Partitions: t.Partitions}
		}
		for _, t := range b.addPartitionsToTxn(rc, req.TransactionalID, req.ProducerID, req.ProducerEpoch, false, topics) {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTopicPartition{Partition: p.Partition, ErrorCode: p.ErrorCode})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	for _, tx := range req.Transactions {
		rt := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rt.TransactionalID = tx.TransactionalID
		rt.Topics = b.addPartitionsToTxn(rc, tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly, tx.Topics)
		resp.Transactions = append(resp.Transactions, rt)
	}
	return resp, nil
}

// addPartitionsToTxn answers one transaction: unknown partitions get
// UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED, as
// Kafka does; otherwise every partition gets the coordinator's answer, per
// partition for a verification (VerifyOnly).
func (b *Broker) addPartitionsToTxn(rc *reqCtx, id string, producerID int64, epoch int16, verifyOnly bool, topics []kmsg.AddPartitionsToTxnRequestTransactionTopic) []kmsg.AddPartitionsToTxnResponseTransactionTopic {
	parts := make(map[string][]int32, len(topics))
	unknown := false
	for _, t := range topics {
		for _, p := range t.Partitions {
			unknown = unknown || b.topics.partition(t.Topic, p) == nil
		}
		parts[t.Topic] = append(parts[t.Topic], t.Partitions...)
	}
	var coordErr *kerr.Error
	var verified map[string]map[int32]*kerr.Error
	switch {
	case unknown:
	case verifyOnly:
		verified, coordErr = b.coord.txns.VerifyPartitions(id, producerID, epoch, parts)
	default:
		coordErr = b.coord.txns.AddPartitions(id, producerID, epoch, parts, rc.version, 2)
	}
	out := make([]kmsg.AddPartitionsToTxnResponseTransactionTopic, 0, len(topics))
	for _, t := range topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
			rp.Partition = p
			switch {
			case !unknown:
				if e := cmp.Or(coordErr, verified[t.Topic][p]); e != nil {
					rp.ErrorCode = e.Code
				}
			case b.topics.partition(t.Topic, p) == nil:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				rp.ErrorCode = kerr.OperationNotAttempted.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out = append(out, rt)
	}
	return out
}
