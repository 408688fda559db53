package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/coordinator"
	"github.com/kafkit/kafkit/internal/metadata"
	"github.com/kafkit/kafkit/internal/recordbatch"
	"github.com/kafkit/kafkit/internal/share"
)

// Share groups on a cluster, as Kafka splits them:
//
//   - The group's coordinator is the leader of the group's partition of
//     __consumer_offsets (FindCoordinator with key type GROUP, as for
//     consumer groups): it runs ShareGroupHeartbeat (membership and
//     assignment), ShareGroupDescribe, ListGroups, DeleteGroups and the
//     share offsets APIs, and answers NOT_COORDINATOR elsewhere.
//   - Each topic partition's leader serves ShareFetch and ShareAcknowledge
//     for it (NOT_LEADER_OR_FOLLOWER elsewhere, with the current leader)
//     and keeps the share-partitions' live state: the in-flight records,
//     their acquisition locks and delivery counts.
//   - The durable state (SPSO and the in-flight window's delivery states
//     and counts, what Kafka keeps in __share_group_state) is kept by the
//     group's coordinator too, which is so also the group's share
//     coordinator: a leader reads a share-partition's state from it with
//     ReadShareGroupState when it first serves the partition, and writes
//     every change (acknowledgements, releases, expired locks; not
//     acquisitions, as on a single node) with WriteShareGroupState, which
//     is answered once the record is replicated. Both carry the leader's
//     epoch; the coordinator refuses writes of an epoch older than one it
//     has seen (FENCED_LEADER_EPOCH), so a deposed leader cannot overwrite
//     what its successor read.
//
// Where Kafka's share coordinator writes __share_group_state partitions
// of its own, kafkit's writes the records into the group's partition of
// __consumer_offsets, under a key version of its own (shareOffsetsKeyVersion,
// which the group coordinator's replay skips): the state is then replicated,
// loaded and unloaded with the group it belongs to, and one node answers
// every share offsets API of a group. A single node keeps using
// __share_group_state.
//
// At-least-once across a leader move: an acknowledgement is answered only
// once its state is replicated, so the new leader reads it and never
// delivers an accepted record again; records acquired and not acknowledged
// were saved as available (with their delivery count), so the new leader
// delivers them again.

// shareOffsetsKeyVersion is the key version of share state records in
// __consumer_offsets: none of Kafka's __consumer_offsets record types.
const shareOffsetsKeyVersion = 0x4b53

// shareLoads tracks the partitions of __consumer_offsets whose share
// state this node has loaded (cluster only). A partition is marked
// unloaded as soon as an applied metadata batch takes its leadership
// away (followShareLeaders), before the unload itself runs, so that a
// leadership lost and won again is not served until loaded again.
type shareLoads struct {
	mu     sync.Mutex // guards loaded and changed
	loaded map[int32]bool
	// changed is closed (and replaced) when a partition is loaded.
	changed chan struct{}
}

func (l *shareLoads) set(partition int32, loaded bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loaded == nil {
		l.loaded = map[int32]bool{}
	}
	l.loaded[partition] = loaded
	if loaded && l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// get reports whether partition is loaded, and a channel closed at the
// next load.
func (l *shareLoads) get(partition int32) (bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.loaded[partition], l.changed
}

// shareLoadWait is how long a request waits for its group's partition of
// __consumer_offsets to load before COORDINATOR_LOAD_IN_PROGRESS: a
// partition this node just became the leader of loads in moments, and
// not every client retries that error on the share offsets APIs.
const shareLoadWait = 3 * time.Second

// unloadLost marks unloaded the partitions img says this node no longer
// leads.
func (l *shareLoads) unloadLost(img *metadata.Image, node int32) {
	t := img.Topics[offsetsTopic]
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, loaded := range l.loaded {
		if loaded && (t == nil || int(p) >= len(t.Partitions) || t.Partitions[p].Leader != node) {
			l.loaded[p] = false
		}
	}
}

// newShareCluster builds a cluster node's two share Managers: the
// share-partitions it leads, whose durable state is at the groups'
// coordinators, and the groups it coordinates, with that durable state.
func (b *Broker) newShareCluster(cfg share.Config) {
	lead := cfg
	lead.Store, lead.Read = shareLeaderStore{b}, shareLeaderStore{b}.read
	b.share = share.NewManager(lead)
	cfg.Store = shareCoordStore{b}
	b.shareCoord = share.NewManager(cfg)
}

// shareCoordinatorError is why this node may not coordinate group now:
// NOT_COORDINATOR when it does not lead the group's partition of
// __consumer_offsets, COORDINATOR_LOAD_IN_PROGRESS while it loads the
// partition's share state. A single node coordinates every group.
func (b *Broker) shareCoordinatorError(group string) *kerr.Error {
	if !b.cfg.clusterMode() {
		return nil
	}
	if b.cluster == nil {
		return kerr.CoordinatorNotAvailable // not joined yet
	}
	partition := coordinator.PartitionFor(group, b.coord.offsetsPartitions)
	timeout := time.NewTimer(shareLoadWait)
	defer timeout.Stop()
	for {
		if b.cluster.partitionLeader(offsetsTopic, partition) != b.nodeID {
			return kerr.NotCoordinator
		}
		loaded, changed := b.shareLoads.get(partition)
		if loaded {
			return nil
		}
		select {
		case <-changed:
		case <-timeout.C:
			return kerr.CoordinatorLoadInProgress
		case <-b.ctx.Done():
			return kerr.CoordinatorNotAvailable
		}
	}
}

// loadShareCoordinator loads the share state of the groups of a
// partition of __consumer_offsets this node now leads, from its log.
func (b *Broker) loadShareCoordinator(index int32) error {
	inPartition := func(group string) bool {
		return coordinator.PartitionFor(group, b.coord.offsetsPartitions) == index
	}
	b.shareCoord.DropGroups(inPartition)
	var bad error
	err := b.replayBatches(offsetsTopic, index, func(_ *partition, batch *recordbatch.Batch) bool {
		err := loadShareStates(b.shareCoord, batch, func(key []byte) bool {
			return len(key) >= 2 && binary.BigEndian.Uint16(key) == shareOffsetsKeyVersion
		})
		if err != nil {
			bad = err
		}
		return true
	})
	if bad != nil {
		b.log.Warn("skipped malformed share state records", "topic", offsetsTopic, "partition", index, "err", bad)
	}
	if err != nil {
		return err
	}
	b.shareLoads.set(index, true)
	return nil
}

// unloadShareCoordinator forgets the share groups of a partition of
// __consumer_offsets this node no longer leads: their members find the
// new coordinator (NOT_COORDINATOR) and join it again.
func (b *Broker) unloadShareCoordinator(partition int32) {
	b.shareLoads.set(partition, false)
	b.shareCoord.DropGroups(func(group string) bool {
		return coordinator.PartitionFor(group, b.coord.offsetsPartitions) == partition
	})
}

// followShareLeaders follows an applied metadata batch: the partitions of
// __consumer_offsets this node no longer leads stop being served at once,
// and the share-partitions it no longer leads at the epoch it loaded them
// at are dropped (a later leadership reads their state again). It runs on
// raft's FSM goroutine, so the drop (which may wait for a write in
// progress) runs on its own.
func (c *cluster) followShareLeaders(img *metadata.Image) {
	b := c.b
	b.shareLoads.unloadLost(img, b.nodeID)
	b.goStart(func() {
		b.share.DropParts(func(k share.Key, epoch int32) bool {
			t := b.topics.getByID(k.Topic)
			if t == nil {
				return true
			}
			l := c.checkLeader(t.name, k.Partition, -1)
			return l.code != 0 || l.leaderEpoch != epoch
		})
	})
}

// shareLeaderEpoch is this node's leader epoch of k's partition, or
// NOT_LEADER_OR_FOLLOWER.
func (b *Broker) shareLeaderEpoch(k share.Key) (int32, error) {
	t := b.topics.getByID(k.Topic)
	if t == nil {
		return 0, kerr.UnknownTopicID
	}
	l := b.cluster.checkLeader(t.name, k.Partition, -1)
	if l.code != 0 {
		return 0, kerr.ErrorForCode(l.code)
	}
	return l.leaderEpoch, nil
}

// shareNotLeader is the code of a share request for a partition of t this
// node does not lead (0 when it leads it or is a single node), with the
// current leader and its epoch.
func (b *Broker) shareNotLeader(t *topic, partition int32) (code int16, leader, epoch int32) {
	if b.cluster == nil {
		return 0, -1, -1
	}
	l := b.cluster.checkLeader(t.name, partition, -1)
	return l.code, l.leader, l.leaderEpoch
}

// shareCoordinatorRetry is how long a leader keeps trying to reach a
// group's share coordinator while it moves or loads.
const shareCoordinatorRetry = 10 * time.Second

// onShareCoordinator runs fn with the node coordinating group, again
// while the coordinator moves (NOT_COORDINATOR, load in progress, not
// available, a node that does not answer), for at most
// shareCoordinatorRetry.
func (b *Broker) onShareCoordinator(group string, fn func(ctx context.Context, node int32) error) error {
	ctx, cancel := context.WithTimeout(b.ctx, shareCoordinatorRetry)
	defer cancel()
	partition := coordinator.PartitionFor(group, b.coord.offsetsPartitions)
	for {
		err := error(kerr.CoordinatorNotAvailable)
		if node := b.cluster.partitionLeader(offsetsTopic, partition); node >= 0 {
			err = fn(ctx, node)
		}
		var ke *kerr.Error
		if err == nil || (errors.As(err, &ke) && ke != kerr.NotCoordinator && ke != kerr.CoordinatorLoadInProgress && ke != kerr.CoordinatorNotAvailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return kerr.CoordinatorNotAvailable
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// shareLeaderStore is a leader's Store: the durable state is written to
// the group's share coordinator.
type shareLeaderStore struct{ b *Broker }

func (s shareLeaderStore) read(k share.Key) (share.Loaded, error) {
	b := s.b
	epoch, err := b.shareLeaderEpoch(k)
	if err != nil {
		return share.Loaded{}, err
	}
	var l share.Loaded
	err = b.onShareCoordinator(k.Group, func(ctx context.Context, node int32) error {
		if node == b.nodeID {
			if e := b.shareCoordinatorError(k.Group); e != nil {
				return e
			}
			var e *kerr.Error
			if l, e = b.shareCoord.ReadState(k, epoch); e != nil {
				return e
			}
			return nil
		}
		req := kmsg.NewPtrReadShareGroupStateRequest()
		req.GroupID = k.Group
		rt := kmsg.NewReadShareGroupStateRequestTopic()
		rt.TopicID = k.Topic
		rp := kmsg.NewReadShareGroupStateRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch = k.Partition, epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := s.ask(ctx, node, k, req)
		if err != nil {
			return err
		}
		r := resp.(*kmsg.ReadShareGroupStateResponse)
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			return kerr.UnknownServerError
		}
		p := r.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return err
		}
		l = share.Loaded{Found: p.StartOffset >= 0, Start: p.StartOffset, LeaderEpoch: epoch}
		for _, sb := range p.StateBatches {
			l.Batches = append(l.Batches, share.StateBatch{First: sb.FirstOffset, Last: sb.LastOffset, State: share.State(sb.DeliveryState), DeliveryCount: sb.DeliveryCount})
		}
		return nil
	})
	return l, err
}

func (s shareLeaderStore) Save(k share.Key, start int64, batches []share.StateBatch, leaderEpoch int32) error {
	b := s.b
	return b.onShareCoordinator(k.Group, func(ctx context.Context, node int32) error {
		if node == b.nodeID {
			if e := b.shareCoordinatorError(k.Group); e != nil {
				return e
			}
			if e := b.shareCoord.WriteState(k, leaderEpoch, start, batches); e != nil {
				return e
			}
			return nil
		}
		resp, err := s.ask(ctx, node, k, writeShareStateRequest(k, start, batches, leaderEpoch))
		if err != nil {
			return err
		}
		r := resp.(*kmsg.WriteShareGroupStateResponse)
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			return kerr.UnknownServerError
		}
		return kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode)
	})
}

// Delete is not a leader's: offsets are deleted at the coordinator.
func (s shareLeaderStore) Delete(share.Key) error { return kerr.NotCoordinator }

// shareConns is how many connections a leader keeps to each share
// coordinator. A node answers a connection's requests one at a time and a
// write is answered once replicated, so one connection would make every
// share-partition's writes wait for each other's replication; a key keeps
// to one connection, its writes being one at a time anyway.
const shareConns = 8

// chanShare is the first of the shareConns channels (see channel) of
// share-partition state, clear of cluster.go's.
const chanShare channel = 64

// ask sends req about k to node on k's share channel; a node that cannot
// be reached counts as a coordinator not available (retried).
func (s shareLeaderStore) ask(ctx context.Context, node int32, k share.Key, req kmsg.Request) (kmsg.Response, error) {
	h := fnv.New32a()
	h.Write([]byte(k.Group))
	h.Write(k.Topic[:])
	ch := chanShare + channel(int32(h.Sum32()%shareConns+uint32(k.Partition))%shareConns)
	cl, err := s.b.cluster.clientOn(node, ch)
	if err != nil {
		return nil, kerr.CoordinatorNotAvailable
	}
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		s.b.log.Debug("share coordinator request", "node", node, "err", err)
		return nil, kerr.CoordinatorNotAvailable
	}
	return resp, nil
}

// shareCoordStore is a share coordinator's Store: records in the group's
// partition of __consumer_offsets, written as its leader and answered once
// replicated.
type shareCoordStore struct{ b *Broker }

func (s shareCoordStore) append(k share.Key, value []byte) error {
	partition := coordinator.PartitionFor(k.Group, s.b.coord.offsetsPartitions)
	if !s.b.leadsInternal(offsetsTopic)(partition) {
		return kerr.NotCoordinator
	}
	t, err := s.b.offsetsTopic()
	if err != nil {
		return err
	}
	_, err = s.b.appendBatch(t, partition, []coordinator.Record{{Key: shareStateKey(shareOffsetsKeyVersion, k), Value: value}}, recordbatch.NoProducer())
	return err
}

func (s shareCoordStore) Save(k share.Key, start int64, batches []share.StateBatch, leaderEpoch int32) error {
	return s.append(k, shareStateValue(k, start, batches, leaderEpoch))
}

func (s shareCoordStore) Delete(k share.Key) error { return s.append(k, nil) }

// ReadShareGroupState: v0; WriteShareGroupState: v0-1 (KIP-932), between
// a partition's leader and the group's share coordinator.
var (
	readShareGroupStateVersions  = versions{0, 0}
	writeShareGroupStateVersions = versions{0, 1}
)

func (b *Broker) handleReadShareGroupState(rc *reqCtx, req *kmsg.ReadShareGroupStateRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ReadShareGroupStateResponse)
	allowed := b.allowedCluster(rc, kmsg.ACLOperationClusterAction)
	for _, rt := range req.Topics {
		st := kmsg.NewReadShareGroupStateResponseTopic()
		st.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewReadShareGroupStateResponseTopicPartition()
			sp.Partition, sp.StartOffset = rp.Partition, -1
			e := b.shareCoordinatorError(req.GroupID)
			if !allowed {
				e = kerr.ClusterAuthorizationFailed
			}
			if e == nil {
				var l share.Loaded
				if l, e = b.shareCoord.ReadState(share.Key{Group: req.GroupID, Topic: rt.TopicID, Partition: rp.Partition}, rp.LeaderEpoch); e == nil && l.Found {
					sp.StartOffset = l.Start
					for _, sb := range l.Batches {
						sp.StateBatches = append(sp.StateBatches, kmsg.ReadShareGroupStateResponseTopicPartitionStateBatch{
							FirstOffset: sb.First, LastOffset: sb.Last, DeliveryState: int8(sb.State), DeliveryCount: sb.DeliveryCount})
					}
				}
			}
			if e != nil {
				sp.ErrorCode = e.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (b *Broker) handleWriteShareGroupState(rc *reqCtx, req *kmsg.WriteShareGroupStateRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.WriteShareGroupStateResponse)
	allowed := b.allowedCluster(rc, kmsg.ACLOperationClusterAction)
	for _, rt := range req.Topics {
		st := kmsg.NewWriteShareGroupStateResponseTopic()
		st.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewWriteShareGroupStateResponseTopicPartition()
			sp.Partition = rp.Partition
			e := b.shareCoordinatorError(req.GroupID)
			switch {
			case !allowed:
				e = kerr.ClusterAuthorizationFailed
			case e == nil && !validStateBatches(rp.StartOffset, rp.StateBatches):
				e = kerr.InvalidRequest
			case e == nil:
				var batches []share.StateBatch
				for _, sb := range rp.StateBatches {
					batches = append(batches, share.StateBatch{First: sb.FirstOffset, Last: sb.LastOffset, State: share.State(sb.DeliveryState), DeliveryCount: sb.DeliveryCount})
				}
				e = b.shareCoord.WriteState(share.Key{Group: req.GroupID, Topic: rt.TopicID, Partition: rp.Partition}, rp.LeaderEpoch, rp.StartOffset, batches)
			}
			if e != nil {
				sp.ErrorCode = e.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// maxShareStateWindow bounds the window a WriteShareGroupState may
// describe, which Restore expands to one entry per offset: well past any
// group.share.partition.max.record.locks.
const maxShareStateWindow = 1 << 20

// validStateBatches checks a written state before it is expanded: a
// start offset, and ordered batches of known states within a bounded
// window past it.
func validStateBatches(start int64, batches []kmsg.WriteShareGroupStateRequestTopicPartitionStateBatch) bool {
	if start < 0 {
		return false
	}
	prev := start - 1
	for _, sb := range batches {
		switch share.State(sb.DeliveryState) {
		case share.Available, share.Acknowledged, share.Archived:
		default:
			return false
		}
		if sb.FirstOffset <= prev || sb.LastOffset < sb.FirstOffset || sb.LastOffset-start >= maxShareStateWindow {
			return false
		}
		prev = sb.LastOffset
	}
	return true
}

// shareFetchEndpoints adds the KIP-951 NodeEndpoints of the leaders a
// ShareFetch response points to.
func (c *cluster) shareFetchEndpoints(rc *reqCtx, resp *kmsg.ShareFetchResponse) {
	for _, br := range c.leadersNamed(rc, func(yield func(int16, int32)) {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				yield(p.ErrorCode, p.CurrentLeader.LeaderID)
				yield(p.AcknowledgeErrorCode, p.CurrentLeader.LeaderID)
			}
		}
	}) {
		resp.NodeEndpoints = append(resp.NodeEndpoints, kmsg.ShareFetchResponseNodeEndpoint{NodeID: br.id, Host: br.host, Port: br.port, Rack: br.rack})
	}
}

// shareAckEndpoints is shareFetchEndpoints for ShareAcknowledge.
func (c *cluster) shareAckEndpoints(rc *reqCtx, resp *kmsg.ShareAcknowledgeResponse) {
	for _, br := range c.leadersNamed(rc, func(yield func(int16, int32)) {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				yield(p.ErrorCode, p.CurrentLeader.LeaderID)
			}
		}
	}) {
		resp.NodeEndpoints = append(resp.NodeEndpoints, kmsg.ShareAcknowledgeResponseNodeEndpoint{NodeID: br.id, Host: br.host, Port: br.port, Rack: br.rack})
	}
}
