package broker

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-6. v1 adds the key type (0 group, 1 transaction), v3
// is flexible, v4 batches keys (KIP-699), v6 the share coordinator's keys
// (2, "groupId:topicId:partition", KIP-932). A single broker coordinates
// every group and every transactional id; the first group lookup creates
// __consumer_offsets, as Kafka does. A share-partition's share coordinator
// is its group's coordinator (share_cluster.go).
var findCoordinatorVersions = versions{0, 6}

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
		keyType := req.CoordinatorType
		if keyType == 2 {
			group, ok := shareCoordinatorGroup(key)
			if !ok || rc.version < 6 {
				err = newTopicError(kerr.InvalidRequest, "Invalid coordinator key %s for share coordinator", key)
			}
			key, keyType = group, 0
		}
		switch {
		case err != nil:
		case keyType == 0:
			if _, terr := b.offsetsTopic(); terr != nil {
				b.log.Warn("creating "+offsetsTopic, "err", terr)
				err = kerr.CoordinatorNotAvailable
			}
		case keyType == 1:
		default:
			err = newTopicError(kerr.InvalidRequest, "Unknown coordinator type %d in FindCoordinator request", req.CoordinatorType)
		}
		if err == nil && b.cluster != nil {
			err = b.cluster.findCoordinator(rc, keyType, key, &c)
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

// shareCoordinatorGroup is the group of a share coordinator key,
// "groupId:topicId:partition" with the topic id as Kafka prints a Uuid
// (URL-safe base64 without padding); the group id may itself hold colons.
func shareCoordinatorGroup(key string) (string, bool) {
	rest, part, ok := cutLast(key, ":")
	if !ok {
		return "", false
	}
	group, topic, ok := cutLast(rest, ":")
	if !ok || group == "" {
		return "", false
	}
	if n, err := strconv.ParseInt(part, 10, 32); err != nil || n < 0 {
		return "", false
	}
	if id, err := base64.RawURLEncoding.DecodeString(topic); err != nil || len(id) != 16 {
		return "", false
	}
	return group, true
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
