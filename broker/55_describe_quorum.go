package broker

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// DescribeQuorum: v0-2 (v1 adds the replicas' last fetch and caught-up
// times, KIP-836; v2 the voters' endpoints, KIP-853). Served on a cluster
// only, as Kafka's KRaft nodes serve it: a single node runs no quorum.
//
// As in Kafka, the active controller answers (KafkaRaftClient's
// handleDescribeQuorumRequest), another controller answers
// NOT_LEADER_OR_FOLLOWER on its CONTROLLER listener, and a broker forwards
// the request to the active controller (KafkaApis forwardToControllerOrFail).
// The answer comes from hashicorp/raft's state (metadata.Quorum.Describe):
// offsets are Raft indexes, the leader epoch is the Raft term, a
// follower's log end offset and times are what its last AppendEntries
// answer (a heartbeat at most a tenth of the election timeout old) told
// the leader, and a replica has no directory id.
var describeQuorumVersions = versions{0, 2}

// metadataTopic is KRaft's metadata log, the one partition DescribeQuorum
// describes.
const metadataTopic = "__cluster_metadata"

func (b *Broker) handleDescribeQuorum(rc *reqCtx, req *kmsg.DescribeQuorumRequest) (kmsg.Response, error) {
	c := b.cluster
	if len(req.Topics) != 1 || req.Topics[0].Topic != metadataTopic || len(req.Topics[0].Partitions) != 1 || req.Topics[0].Partitions[0].Partition != 0 {
		return quorumPartitionError(req, kerr.UnknownTopicOrPartition), nil
	}
	if rc.listener == controllerListener || c.q.IsController() {
		return c.describeQuorum(req), nil
	}
	ctx, cancel := context.WithTimeout(rc.ctx, localWait)
	defer cancel()
	resp, err := c.toController(ctx, req, func(r kmsg.Response) int16 {
		// A controller that lost the leadership meanwhile: ask the next.
		dr := r.(*kmsg.DescribeQuorumResponse)
		if len(dr.Topics) == 1 && len(dr.Topics[0].Partitions) == 1 && dr.Topics[0].Partitions[0].ErrorCode == kerr.NotLeaderForPartition.Code {
			return kerr.NotController.Code
		}
		return dr.ErrorCode
	})
	if err != nil {
		r := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
		e := forwardError(err)
		r.ErrorCode, r.ErrorMessage = errorCode(e), errorMessage(e)
		return r, nil
	}
	resp.SetVersion(rc.version)
	return resp, nil
}

// quorumPartitionError answers every partition of req with e
// (DescribeQuorumRequest.getPartitionLevelErrorResponse).
func quorumPartitionError(req *kmsg.DescribeQuorumRequest, e *kerr.Error) *kmsg.DescribeQuorumResponse {
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeQuorumResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDescribeQuorumResponseTopicPartition()
			sp.Partition, sp.ErrorCode, sp.ErrorMessage = rp.Partition, e.Code, kmsg.StringPtr(e.Description)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// describeQuorum answers from this node's quorum member.
func (c *cluster) describeQuorum(req *kmsg.DescribeQuorumRequest) *kmsg.DescribeQuorumResponse {
	st, err := c.q.Describe()
	if err != nil {
		return quorumPartitionError(req, kerr.NotLeaderForPartition)
	}
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	p := kmsg.NewDescribeQuorumResponseTopicPartition()
	p.LeaderID, p.LeaderEpoch, p.HighWatermark = st.Leader, st.Epoch, st.HighWatermark
	replicas := func(in []metadata.ReplicaState) []kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
		out := []kmsg.DescribeQuorumResponseTopicPartitionReplicaState{}
		for _, r := range in {
			rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
			rs.ReplicaID, rs.LogEndOffset = r.ID, r.LogEndOffset
			rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = unixMilliOr(r.LastFetch), unixMilliOr(r.LastCaughtUp)
			out = append(out, rs)
		}
		return out
	}
	p.CurrentVoters, p.Observers = replicas(st.Voters), replicas(st.Observers)
	t := kmsg.NewDescribeQuorumResponseTopic()
	t.Topic, t.Partitions = metadataTopic, []kmsg.DescribeQuorumResponseTopicPartition{p}
	resp.Topics = []kmsg.DescribeQuorumResponseTopic{t}
	// v2: each voter's controller endpoint.
	name := c.b.cfg.controllerNames()[0]
	for _, v := range st.Voters {
		host, port, ok := c.voterEndpoint(v.ID)
		if !ok {
			continue
		}
		n := kmsg.NewDescribeQuorumResponseNode()
		n.NodeID = v.ID
		l := kmsg.NewDescribeQuorumResponseNodeListener()
		l.Name, l.Host, l.Port = name, host, uint16(port)
		n.Listeners = []kmsg.DescribeQuorumResponseNodeListener{l}
		resp.Nodes = append(resp.Nodes, n)
	}
	return resp
}

// voterEndpoint is voter id's CONTROLLER endpoint from
// controller.quorum.voters.
func (c *cluster) voterEndpoint(id int32) (string, int32, bool) {
	host, port, err := net.SplitHostPort(c.voterAddrs()[id])
	if err != nil {
		return "", 0, false
	}
	p, err := strconv.Atoi(port)
	return host, int32(p), err == nil
}

// unixMilliOr is t in Unix milliseconds, -1 (unknown) for the zero time.
func unixMilliOr(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}
