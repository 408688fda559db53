package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/coordinator"
	"github.com/kafkit/kafkit/internal/recordbatch"
	"github.com/kafkit/kafkit/internal/share"
)

// shareStateTopic is Kafka's internal topic of share-partition state.
const shareStateTopic = "__share_group_state"

// shareTick is how often acquisition locks and member sessions are checked
// for expiry: well under the smallest lock duration a group may set (1 s).
const shareTick = 100 * time.Millisecond

// startShareGroups builds the share-group state (KIP-932), replays
// __share_group_state into it and starts the expiry loop. Share groups
// are on by default, as in Kafka 4.2 (share.version=1 at metadata version
// 4.2).
func (b *Broker) startShareGroups() error {
	gc, err := openGroupConfigs(b)
	if err != nil {
		return err
	}
	b.groupConfigs = gc
	cfg := share.Config{
		GroupConfig:  b.shareGroupConfig,
		MaxGroupSize: int(b.cfg.ShareMaxSize),
		MaxSessions:  int(b.cfg.ShareMaxSessions),
	}
	if b.cfg.clusterMode() {
		b.newShareCluster(cfg)
	} else {
		cfg.Store = shareStore{b}
		b.share = share.NewManager(cfg)
		b.shareCoord = b.share
		if err := b.replayShareState(); err != nil {
			return fmt.Errorf("loading %s: %w", shareStateTopic, err)
		}
	}
	b.goStart(func() {
		t := time.NewTicker(shareTick)
		defer t.Stop()
		for {
			select {
			case <-b.ctx.Done():
				return
			case now := <-t.C:
				b.share.Tick(now)
				if b.shareCoord != b.share {
					b.shareCoord.Tick(now)
				}
			}
		}
	})
	return nil
}

func (b *Broker) registerShareHandlers(t *handlerTable) {
	register(t, kmsg.ShareGroupHeartbeat, shareGroupHeartbeatVersions, b.handleShareGroupHeartbeat)
	register(t, kmsg.ShareGroupDescribe, shareGroupDescribeVersions, b.handleShareGroupDescribe)
	register(t, kmsg.ShareFetch, shareFetchVersions, b.handleShareFetch)
	register(t, kmsg.ShareAcknowledge, shareAcknowledgeVersions, b.handleShareAcknowledge)
	register(t, kmsg.DescribeShareGroupOffsets, describeShareGroupOffsetsVersions, b.handleDescribeShareGroupOffsets)
	register(t, kmsg.AlterShareGroupOffsets, alterShareGroupOffsetsVersions, b.handleAlterShareGroupOffsets)
	register(t, kmsg.DeleteShareGroupOffsets, deleteShareGroupOffsetsVersions, b.handleDeleteShareGroupOffsets)
	if b.cfg.clusterMode() {
		register(t, kmsg.ReadShareGroupState, readShareGroupStateVersions, b.handleReadShareGroupState)
		register(t, kmsg.WriteShareGroupState, writeShareGroupStateVersions, b.handleWriteShareGroupState)
	}
}

// shareGroupConfig is a group's share configuration: its share.* group
// configs over the broker's group.share.* values.
func (b *Broker) shareGroupConfig(group string) share.GroupConfig {
	gc, c := b.groupConfigs, b.conf()
	ms := func(key string) time.Duration { return time.Duration(gc.getInt(group, key)) * time.Millisecond }
	return share.GroupConfig{
		Limits: share.Limits{
			Lock:          ms("share.record.lock.duration.ms"),
			DeliveryLimit: int16(gc.getInt(group, "share.delivery.count.limit")),
			MaxLocks:      int(c.SharePartitionMaxRecordLocks),
		},
		HeartbeatInterval: ms("share.heartbeat.interval.ms"),
		SessionTimeout:    ms("share.session.timeout.ms"),
	}
}

// shareStartOffset is where a group starts on a partition it has no state
// for, by its share.auto.offset.reset (Kafka's default: latest).
func (b *Broker) shareStartOffset(group string, p *partition) int64 {
	reset := b.groupConfigs.get(group, "share.auto.offset.reset")
	switch {
	case reset == "earliest":
		return p.log.StartOffset()
	case strings.HasPrefix(reset, "by_duration:"):
		d, _ := parseISODuration(strings.TrimPrefix(reset, "by_duration:"))
		off, _, _, err := b.listOffset(p, time.Now().Add(-d).UnixMilli(), p.log.HighWatermark())
		if err == nil && off >= 0 {
			return off
		}
	}
	return p.log.HighWatermark()
}

// sharePartition finds a share-partition's log partition by topic id.
func (b *Broker) sharePartition(id [16]byte, index int32) (*topic, *partition) {
	t := b.topics.getByID(id)
	if t == nil || index < 0 || int(index) >= len(t.partitions) {
		return t, nil
	}
	return t, t.partitions[index]
}

// shareTopicInfo resolves a subscribed topic for the assignor.
func (b *Broker) shareTopicInfo(name string) (share.TopicInfo, bool) {
	t := b.topics.get(name)
	if t == nil || t.internal {
		return share.TopicInfo{}, false
	}
	return share.TopicInfo{ID: t.id, Partitions: int32(len(t.partitions))}, true
}

// shareStore keeps share-partition state in __share_group_state, one
// record per share-partition, compacted to the latest. Kafka writes
// ShareSnapshot/ShareUpdate records there; kmsg has no schema for those,
// so a record holds the share coordinator's own wire form of that state:
// the key a ReadShareGroupState request for the one partition, the value a
// WriteShareGroupState request (v1) with its SPSO and state batches, each
// after a 2-byte version; a tombstone deletes.
type shareStore struct{ b *Broker }

const shareStateVersion = 1

func shareStateKey(version uint16, k share.Key) []byte {
	req := kmsg.NewReadShareGroupStateRequest()
	req.GroupID = k.Group
	t := kmsg.NewReadShareGroupStateRequestTopic()
	t.TopicID = k.Topic
	p := kmsg.NewReadShareGroupStateRequestTopicPartition()
	p.Partition = k.Partition
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return req.AppendTo(binary.BigEndian.AppendUint16(nil, version))
}

func shareStateValue(k share.Key, start int64, batches []share.StateBatch, leaderEpoch int32) []byte {
	req := writeShareStateRequest(k, start, batches, leaderEpoch)
	req.Version = shareStateVersion
	return req.AppendTo(binary.BigEndian.AppendUint16(nil, shareStateVersion))
}

// writeShareStateRequest is the WriteShareGroupState request of one
// share-partition's state: what a leader sends its coordinator, and the
// value the coordinator stores.
func writeShareStateRequest(k share.Key, start int64, batches []share.StateBatch, leaderEpoch int32) *kmsg.WriteShareGroupStateRequest {
	req := kmsg.NewPtrWriteShareGroupStateRequest()
	req.GroupID = k.Group
	t := kmsg.NewWriteShareGroupStateRequestTopic()
	t.TopicID = k.Topic
	p := kmsg.NewWriteShareGroupStateRequestTopicPartition()
	p.Partition, p.StartOffset, p.LeaderEpoch = k.Partition, start, leaderEpoch
	for _, sb := range batches {
		p.StateBatches = append(p.StateBatches, kmsg.WriteShareGroupStateRequestTopicPartitionStateBatch{
			FirstOffset: sb.First, LastOffset: sb.Last, DeliveryState: int8(sb.State), DeliveryCount: sb.DeliveryCount})
	}
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return req
}

var errBadShareState = errors.New("malformed share state record")

// shareState is one decoded share state record; a tombstone has no
// batches and start -1.
type shareState struct {
	key         share.Key
	start       int64
	batches     []share.StateBatch
	leaderEpoch int32
}

func decodeShareState(key, value []byte) (st shareState, err error) {
	if len(key) < 2 {
		return st, errBadShareState
	}
	kr := kmsg.NewReadShareGroupStateRequest()
	if err := kr.ReadFrom(key[2:]); err != nil || len(kr.Topics) != 1 || len(kr.Topics[0].Partitions) != 1 {
		return st, errBadShareState
	}
	st.key = share.Key{Group: kr.GroupID, Topic: kr.Topics[0].TopicID, Partition: kr.Topics[0].Partitions[0].Partition}
	if value == nil {
		st.start = -1
		return st, nil
	}
	if len(value) < 2 {
		return st, errBadShareState
	}
	vr := kmsg.NewWriteShareGroupStateRequest()
	vr.Version = int16(binary.BigEndian.Uint16(value))
	if err := vr.ReadFrom(value[2:]); err != nil || len(vr.Topics) != 1 || len(vr.Topics[0].Partitions) != 1 {
		return st, errBadShareState
	}
	p := vr.Topics[0].Partitions[0]
	for _, sb := range p.StateBatches {
		st.batches = append(st.batches, share.StateBatch{First: sb.FirstOffset, Last: sb.LastOffset, State: share.State(sb.DeliveryState), DeliveryCount: sb.DeliveryCount})
	}
	st.start, st.leaderEpoch = p.StartOffset, p.LeaderEpoch
	return st, nil
}

// statePartition picks k's partition of __share_group_state, as Kafka's
// share coordinator hashes "group:topicId:partition".
func (s shareStore) statePartition(t *topic, k share.Key) int32 {
	h := fnv.New32a()
	h.Write([]byte(k.Group + ":" + string(k.Topic[:]) + ":" + strconv.Itoa(int(k.Partition))))
	return int32(h.Sum32() % uint32(len(t.partitions)))
}

func (s shareStore) append(k share.Key, value []byte) error {
	t, err := s.b.internalTopic(shareStateTopic, int64(s.b.internalPartitions(shareStateTopic, s.b.cfg.ShareStateNumPartitions)), s.b.cfg.ShareStateReplicationFactor)
	if err != nil {
		return err
	}
	_, err = s.b.appendBatch(t, s.statePartition(t, k), []coordinator.Record{{Key: shareStateKey(0, k), Value: value}}, recordbatch.NoProducer())
	return err
}

func (s shareStore) Save(k share.Key, start int64, batches []share.StateBatch, leaderEpoch int32) error {
	return s.append(k, shareStateValue(k, start, batches, leaderEpoch))
}

func (s shareStore) Delete(k share.Key) error { return s.append(k, nil) }

// replayShareState loads every share-partition's latest state.
// loadShareStates applies the share-partition states of a replayed batch
// whose keys want accepts to m (a tombstone forgets one); a control batch
// holds none. It returns the last record it could not decode, if any.
func loadShareStates(m *share.Manager, batch *recordbatch.Batch, want func(key []byte) bool) error {
	if batch.Attributes.Control() {
		return nil
	}
	var bad error
	for _, rec := range batch.Records {
		if !want(rec.Key) {
			continue
		}
		st, err := decodeShareState(rec.Key, rec.Value)
		if err != nil {
			bad = err
			continue
		}
		if rec.Value == nil {
			m.Forget(st.key)
			continue
		}
		m.Load(st.key, st.start, st.batches, st.leaderEpoch)
	}
	return bad
}

func (b *Broker) replayShareState() error {
	var bad error
	err := b.replayBatches(shareStateTopic, -1, func(_ *partition, batch *recordbatch.Batch) bool {
		if err := loadShareStates(b.share, batch, func([]byte) bool { return true }); err != nil {
			bad = err
		}
		return true
	})
	if bad != nil {
		b.log.Warn("skipped malformed records of "+shareStateTopic, "err", bad)
	}
	return err
}

// parseISODuration parses the ISO-8601 durations Java's Duration.parse
// takes for by_duration: PnDTnHnMn.nS, each part optional.
func parseISODuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("not an ISO-8601 duration: %q", s)
	rest, ok := strings.CutPrefix(strings.ToUpper(s), "P")
	if !ok || rest == "" {
		return 0, bad
	}
	var d time.Duration
	inTime := false
	units := map[bool]map[byte]time.Duration{
		false: {'D': 24 * time.Hour},
		true:  {'H': time.Hour, 'M': time.Minute, 'S': time.Second},
	}
	for rest != "" {
		if rest[0] == 'T' && !inTime {
			inTime, rest = true, rest[1:]
			continue
		}
		i := strings.IndexFunc(rest, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if i <= 0 {
			return 0, bad
		}
		unit, ok := units[inTime][rest[i]]
		if !ok {
			return 0, bad
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil || (unit != time.Second && strings.Contains(rest[:i], ".")) {
			return 0, bad
		}
		d += time.Duration(n * float64(unit))
		rest = rest[i+1:]
	}
	return d, nil
}

// listShareGroups adds the share groups to a ListGroups answer, with
// Kafka's "share" protocol and group type, unless the filters exclude
// them.
func (b *Broker) listShareGroups(req *kmsg.ListGroupsRequest, resp *kmsg.ListGroupsResponse) {
	if resp.ErrorCode != 0 || (len(req.TypesFilter) > 0 && !slices.ContainsFunc(req.TypesFilter, func(t string) bool { return strings.EqualFold(t, "share") })) {
		return
	}
	for _, g := range b.shareCoord.Groups() {
		if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, func(s string) bool { return strings.EqualFold(s, g.State) }) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.ID, "share", g.State, "share"
		resp.Groups = append(resp.Groups, lg)
	}
	slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
}

// deleteShareGroups completes DeleteGroups for the ids the classic
// coordinator does not know that are share groups: an Empty share group
// goes with its state and configs (NON_EMPTY_GROUP while it has members).
func (b *Broker) deleteShareGroups(resp *kmsg.DeleteGroupsResponse) {
	for i := range resp.Groups {
		g := &resp.Groups[i]
		if g.ErrorCode != kerr.GroupIDNotFound.Code || !b.shareCoord.IsGroup(g.Group) {
			continue
		}
		g.ErrorCode = 0
		if e := b.shareCoord.DeleteGroup(g.Group); e != nil {
			g.ErrorCode = e.Code
			continue
		}
		b.groupConfigs.forget(g.Group)
	}
}
