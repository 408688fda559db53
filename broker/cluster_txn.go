package broker

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactions on a cluster: the transaction coordinator (the leader of the
// transactional id's __transaction_state partition) writes each marker on
// the leader of the marker's partition: its own log when it leads it, else
// through WriteTxnMarkers (27) to the leader, as Kafka's coordinator does.
// A partition leader verifies a transactional batch (KIP-890 part 1) with
// the coordinator's node through AddPartitionsToTxn v4+ VerifyOnly, as
// Kafka's ReplicaManager does, once per producer's transaction on the
// partition (Kafka's producer state has it ongoing from then on).

// WriteTxnMarkers: v0-1 (v2 adds KIP-890 part 2's transaction version).
var writeTxnMarkersVersions = versions{0, 1}

// partitionLeader is the leader of a partition in this node's image, -1
// for none.
func (c *cluster) partitionLeader(topic string, partition int32) int32 {
	return c.checkLeader(topic, partition, -1).leader
}

// forwardMarker writes one marker on the partition's leader.
func (c *cluster) forwardMarker(ctx context.Context, leader int32, topic string, partition int32, mk txnMarker) error {
	cl, err := c.clientOn(leader, chanTxnMarkers)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = mk.producerID, mk.epoch, mk.commit, mk.coordinatorEpoch
	m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: topic, Partitions: []int32{partition}}}
	req.Markers = append(req.Markers, m)
	r, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return fmt.Errorf("transaction marker for %s-%d to node %d: %w", topic, partition, leader, err)
	}
	resp := r.(*kmsg.WriteTxnMarkersResponse)
	if len(resp.Markers) == 1 && len(resp.Markers[0].Topics) == 1 && len(resp.Markers[0].Topics[0].Partitions) == 1 {
		return kerr.ErrorForCode(resp.Markers[0].Topics[0].Partitions[0].ErrorCode)
	}
	return fmt.Errorf("transaction marker for %s-%d: malformed WriteTxnMarkers response", topic, partition)
}

// handleWriteTxnMarkers writes markers a transaction coordinator sends to
// this node for the partitions it leads: it appends them all, then
// answers once each is committed, without holding back the connection's
// next requests meanwhile (the coordinator sends the markers of a
// transaction together, as Kafka's does; waiting for each in turn made a
// transaction over many partitions take a high watermark round trip per
// partition).
func (b *Broker) handleWriteTxnMarkers(rc *reqCtx, req *kmsg.WriteTxnMarkersRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	type pending struct {
		m, t, p int // indexes in the response
		done    func(context.Context) error
	}
	var waits []pending
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, t := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = p
				if l := b.cluster.checkLeader(t.Topic, p, -1); l.code != 0 {
					rp.ErrorCode = l.code
				} else if done, err := (txnBackend{b}).startMarker(t.Topic, p, txnMarker{m.ProducerID, m.ProducerEpoch, m.CoordinatorEpoch, m.Committed}); err != nil {
					rp.ErrorCode = errorCode(err)
				} else {
					waits = append(waits, pending{len(resp.Markers), len(rm.Topics), len(rt.Partitions), done})
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	if len(waits) > 0 {
		// Markers are few next to produces: one goroutine waits for a
		// request's markers in turn.
		rc.await = func(complete func()) {
			go func() {
				for _, w := range waits {
					if err := w.done(rc.ctx); err != nil {
						resp.Markers[w.m].Topics[w.t].Partitions[w.p].ErrorCode = errorCode(err)
					}
				}
				complete()
			}()
		}
	}
	return resp, nil
}

// verifiedTxns remembers, per partition led here and producer, the epoch
// whose ongoing transaction the coordinator verified for the partition
// (Kafka's VerificationGuard): later batches of that transaction need no
// verification, and a marker ends it, as does a new leader epoch (markers
// may have been written by another leader meanwhile). Striped so that partitions do not
// share a lock; each stripe's gen counts its markers, so that a
// verification answered while a marker was written is taken again rather
// than trusted.
type verifiedTxns struct {
	stripes [32]struct {
		mu  sync.Mutex // guards gen and m, and orders a verified append against markers
		gen uint64
		m   map[verifiedKey]verifiedEpochs
	}
}

type verifiedEpochs struct {
	producer int16
	leader   int32
}

type verifiedKey struct {
	topic      string
	partition  int32
	producerID int64
}

func (v *verifiedTxns) stripe(k verifiedKey) int {
	h := fnv.New32a()
	h.Write([]byte(k.topic))
	return int((h.Sum32() ^ uint32(k.partition) ^ uint32(k.producerID)) % uint32(len(v.stripes)))
}

// ended forgets the producer's verified transaction on a partition: its
// marker is being written, and its next batch there starts a transaction
// the coordinator must verify again.
func (v *verifiedTxns) ended(topic string, partition int32, producerID int64) {
	k := verifiedKey{topic, partition, producerID}
	s := &v.stripes[v.stripe(k)]
	s.mu.Lock()
	s.gen++
	delete(s.m, k)
	s.mu.Unlock()
}

// verifiedAppend runs append if the producer's transaction on the
// partition was verified, or once the coordinator's node verifies it (a
// few attempts while markers race the verification); otherwise it
// returns the coordinator's error, or NOT_COORDINATOR when the
// coordinator's node cannot be reached (verifiedAppend's caller makes it
// retriable).
func (c *cluster) verifiedAppend(txnID string, producerID int64, epoch int16, topic string, partition int32, append func()) *kerr.Error {
	k := verifiedKey{topic, partition, producerID}
	s := &c.verified.stripes[c.verified.stripe(k)]
	epochs := verifiedEpochs{epoch, c.checkLeader(topic, partition, -1).leaderEpoch}
	for range 3 {
		s.mu.Lock()
		if e, ok := s.m[k]; ok && e == epochs {
			append()
			s.mu.Unlock()
			return nil
		}
		gen := s.gen
		s.mu.Unlock()
		if e := c.verifyWithCoordinator(txnID, producerID, epoch, topic, partition); e != nil {
			return e
		}
		s.mu.Lock()
		if s.gen == gen {
			if s.m == nil {
				s.m = map[verifiedKey]verifiedEpochs{}
			}
			s.m[k] = epochs
			append()
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
	}
	return kerr.ConcurrentTransactions
}

// verifyWithCoordinator asks the leader of the transactional id's
// __transaction_state partition whether the partition is in the
// producer's ongoing transaction (AddPartitionsToTxn, VerifyOnly).
func (c *cluster) verifyWithCoordinator(txnID string, producerID int64, epoch int16, topic string, partition int32) *kerr.Error {
	leader := c.partitionLeader(txnStateTopic, c.b.coord.txns.TxnPartitionFor(txnID))
	cl, err := c.clientOn(leader, chanTxnVerify)
	if err != nil {
		return kerr.NotCoordinator
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = txnID, producerID, epoch, true
	tx.Topics = []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: topic, Partitions: []int32{partition}}}
	req.Transactions = append(req.Transactions, tx)
	ctx, cancel := context.WithTimeout(c.b.ctx, 5*time.Second)
	defer cancel()
	r, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		c.b.log.Debug("transaction verification", "transactional_id", txnID, "coordinator", leader, "err", err)
		return kerr.NotCoordinator
	}
	resp := r.(*kmsg.AddPartitionsToTxnResponse)
	if resp.Version < 4 {
		// The coordinator's node cannot verify (an older version was
		// negotiated): Kafka's ReplicaManager then does not verify.
		return nil
	}
	if resp.ErrorCode != 0 {
		return txnError(kerr.ErrorForCode(resp.ErrorCode), nil)
	}
	for _, rt := range resp.Transactions {
		for _, t := range rt.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return txnError(kerr.ErrorForCode(p.ErrorCode), nil)
				}
			}
		}
	}
	if len(resp.Transactions) != 1 {
		return kerr.UnknownServerError
	}
	return nil
}
