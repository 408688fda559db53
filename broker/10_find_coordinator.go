package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-5. v1 adds the key type (0 group, 1 transaction), v3
// is flexible, v4 batches keys (KIP-699). v6 only adds share-group keys,
// which kafkit has no coordinator for. This single broker coordinates every
// group and every transactional id; the first group lookup creates
// __consumer_offsets, as Kafka does.
var findCoordinatorVersions = versions{0, 5}

func (b *Broker) handleFindCoordinator(rc *reqCtx, req *kmsg.FindCoordinatorRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if rc.version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	host, port := b.endpoint(rc.listener)
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Host, c.Port = key, b.nodeID, host, port
		var err error
		switch req.CoordinatorType {
		case 0:
			if _, terr := b.offsetsTopic(); terr != nil {
				b.log.Warn("creating "+offsetsTopic, "err", terr)
				err = kerr.CoordinatorNotAvailable
			}
		case 1:
		default:
			err = newTopicError(kerr.InvalidRequest, "Unknown coordinator type %d in FindCoordinator request", req.CoordinatorType)
		}
		if err == nil && b.cluster != nil {
			err = b.cluster.findCoordinator(rc, req.CoordinatorType, key, &c)
		}
		if err != nil {
			c.NodeID, c.Host, c.Port = -1, "", -1
			c.ErrorCode, c.ErrorMessage = errorCode(err), errorMessage(err)
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if rc.version < 4 {
		c := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port
		resp.Coordinators = nil
	}
	return resp, nil
}
