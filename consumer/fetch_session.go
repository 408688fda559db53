package consumer

import (
	"errors"
	"math"
	"slices"

	"github.com/kafkit/kafkit"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchSession is the consumer's side of a KIP-227 fetch session on one
// fetch connection to one broker, as Java's FetchSessionHandler: a full
// Fetch (epoch 0) names every partition to fetch and asks the broker for a
// session; each incremental Fetch after it names only the partitions added
// or changed (a new fetch offset, leader epoch or size) and forgets the ones
// no longer wanted, and the broker leaves out of its answer the partitions
// with nothing new. A session partition an incremental Fetch does not name
// is still fetched. A connection has one Fetch in flight, so a session's
// requests are sequential; the fetcher goroutine owns it.
type fetchSession struct {
	id    int32 // 0: none
	epoch int32 // of the next Fetch; 0 asks for a new session, closing id's
	parts map[kafkit.TopicPartition]sessionPart
	spare map[kafkit.TopicPartition]sessionPart // the map parts was before the last fill, reused by the next
}

// sessionPart is what the broker holds for a session partition: the fields
// of the Fetch that last named it.
type sessionPart struct {
	topicID          [16]byte
	fetchOffset      int64
	leaderEpoch      int32
	lastFetchedEpoch int32
	maxBytes         int32
}

// wantPart is a partition a Fetch is to fetch.
type wantPart struct {
	tp kafkit.TopicPartition
	sessionPart
}

// fill sets req's session and partitions to fetch want (every partition
// the Fetch covers, whether it names it or not), and records want as the
// session's partitions.
func (s *fetchSession) fill(req *kmsg.FetchRequest, want []wantPart) {
	req.SessionID, req.SessionEpoch = s.id, s.epoch
	full := s.epoch == 0
	next := s.spare
	clear(next)
	if next == nil {
		next = make(map[kafkit.TopicPartition]sessionPart, len(want))
	}
	for _, w := range want {
		next[w.tp] = w.sessionPart
		old, ok := s.parts[w.tp]
		if !full && ok && old == w.sessionPart {
			continue
		}
		if !full && ok && old.topicID != w.topicID {
			forget(req, w.tp, old.topicID) // the topic was recreated
		}
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition = w.tp.Partition
		p.FetchOffset = w.fetchOffset
		p.CurrentLeaderEpoch = w.leaderEpoch
		p.LastFetchedEpoch = w.lastFetchedEpoch
		p.LogStartOffset = -1
		p.PartitionMaxBytes = w.maxBytes
		req.Topics = addToTopic(req.Topics, w.tp.Topic, func() kmsg.FetchRequestTopic {
			t := kmsg.NewFetchRequestTopic()
			t.TopicID = w.topicID
			return t
		}, func(t *kmsg.FetchRequestTopic) (*string, *[]kmsg.FetchRequestTopicPartition) {
			return &t.Topic, &t.Partitions
		}, p)
	}
	if !full {
		var gone []kafkit.TopicPartition
		for tp := range s.parts {
			if _, ok := next[tp]; !ok {
				gone = append(gone, tp)
			}
		}
		slices.SortFunc(gone, compareTP)
		for _, tp := range gone {
			forget(req, tp, s.parts[tp].topicID)
		}
	}
	s.parts, s.spare = next, s.parts
}

func forget(req *kmsg.FetchRequest, tp kafkit.TopicPartition, topicID [16]byte) {
	req.ForgottenTopics = addToTopic(req.ForgottenTopics, tp.Topic, func() kmsg.FetchRequestForgottenTopic {
		t := kmsg.NewFetchRequestForgottenTopic()
		t.TopicID = topicID
		return t
	}, func(t *kmsg.FetchRequestForgottenTopic) (*string, *[]int32) {
		return &t.Topic, &t.Partitions
	}, tp.Partition)
}

// handle moves the session on after the Fetch that fill prepared: a full
// Fetch's response opens the session it names (none when the broker keeps
// no session for the consumer: the next Fetch is full again), and an
// incremental one moves the epoch on. After any failure the next Fetch is
// full and asks for a new session, as Java's handleError does.
func (s *fetchSession) handle(resp *kmsg.FetchResponse, err error) {
	switch {
	case err != nil || resp.ErrorCode != 0:
		s.epoch, s.parts = 0, nil
	case s.epoch == 0:
		s.id = resp.SessionID
		if s.id != 0 {
			s.epoch = 1
		}
	case s.epoch == math.MaxInt32:
		s.epoch = 1 // Kafka's nextEpoch wraps to 1
	default:
		s.epoch++
	}
}

// overlap counts the partitions of tps the session holds.
func (s *fetchSession) overlap(tps []kafkit.TopicPartition) int {
	n := 0
	for _, tp := range tps {
		if s.holds(tp) {
			n++
		}
	}
	return n
}

// holds reports whether the session holds tp.
func (s *fetchSession) holds(tp kafkit.TopicPartition) bool {
	_, ok := s.parts[tp]
	return ok
}

// isSessionError reports a Fetch error about the session itself: the next
// (full) Fetch fixes it, so the partitions need no back-off.
func isSessionError(err error) bool {
	return errors.Is(err, kerr.FetchSessionIDNotFound) || errors.Is(err, kerr.InvalidFetchSessionEpoch) ||
		errors.Is(err, kerr.FetchSessionTopicIDError)
}
