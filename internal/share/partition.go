package share

import (
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// State is a record's delivery state, with the numbers Kafka's RecordState
// and __share_group_state use.
type State int8

const (
	Available    State = 0
	Acquired     State = 1
	Acknowledged State = 2
	Archived     State = 4
)

// AckType is an acknowledgement type as ShareFetch and ShareAcknowledge
// carry it (Kafka's AcknowledgeType; Gap marks an offset with no record).
type AckType int8

const (
	AckGap     AckType = 0
	AckAccept  AckType = 1
	AckRelease AckType = 2
	AckReject  AckType = 3
	AckRenew   AckType = 4 // KIP-1222, ShareFetch/ShareAcknowledge v2
)

// AckBatch acknowledges First..Last (inclusive): Types holds one type for
// the whole range or one per offset.
type AckBatch struct {
	First, Last int64
	Types       []AckType
}

// Range is a run of acquired offsets with one delivery count, as
// ShareFetch's AcquiredRecords carry them.
type Range struct {
	First, Last   int64
	DeliveryCount int16
}

// StateBatch is a run of offsets with one state and delivery count, as
// __share_group_state stores them.
type StateBatch struct {
	First, Last   int64
	State         State
	DeliveryCount int16
}

// Limits are the per-partition bounds of Kafka's share-partition.
type Limits struct {
	Lock          time.Duration // share.record.lock.duration.ms
	DeliveryLimit int16         // group.share.delivery.count.limit
	MaxLocks      int           // group.share.partition.max.record.locks
}

// Release is why an acquired record stopped being acquired by its member
// without being acknowledged: what sent it back to be delivered again (or
// archived, at the delivery limit).
type Release int

const (
	ReleaseAck           Release = iota // a RELEASE acknowledgement
	ReleaseLockTimeout                  // its acquisition lock expired
	ReleaseSessionClosed                // the member closed its share session (epoch -1)
	ReleaseConnClosed                   // the connection that opened the session closed
	ReleaseMemberLeft                   // the member left the group
	ReleaseMemberExpired                // the member's group session timed out
	numReleases
)

// String is the reason's name, as the metrics label it.
func (r Release) String() string {
	return [...]string{"release_ack", "lock_timeout", "session_closed", "connection_closed", "member_left", "member_expired"}[r]
}

// maxCountedDelivery is the largest delivery count Stats.Accepted counts
// on its own: Kafka's largest share.delivery.count.limit (a count restored
// from state written under a larger limit counts with it).
const maxCountedDelivery = 10

// Stats count what became of acquired records, for the metrics: why they
// were released (or archived, at the delivery limit), and the delivery
// count at which they were accepted. A Manager's partitions share one.
type Stats struct {
	Released [numReleases]atomic.Uint64
	Archived [numReleases]atomic.Uint64
	Accepted [maxCountedDelivery + 1]atomic.Uint64 // by delivery count
}

// inflight is one offset of the window [start, end).
type inflight struct {
	state  State
	count  int16
	member string    // who holds the acquisition lock
	expiry time.Time // when the acquisition lock ends
}

// Partition is one share-partition: the share-partition start offset
// (SPSO), below which every record is acknowledged or archived, and the
// in-flight window of records from the SPSO up to the share-partition end
// offset (SPEO). Offsets past the SPEO have never been delivered. It is not
// safe for concurrent use: Manager serializes access.
type Partition struct {
	start int64
	recs  []inflight // offset start+i
	// nextExpiry is the earliest lock expiry among acquired records (zero
	// when none), so Expire skips partitions with nothing due.
	nextExpiry time.Time
	stats      *Stats // nil: not counted
}

// NewPartition starts a share-partition at start with nothing in flight.
func NewPartition(start int64) *Partition { return &Partition{start: start} }

// Start is the share-partition start offset (SPSO).
func (p *Partition) Start() int64 { return p.start }

// End is the share-partition end offset (SPEO): one past the last offset
// ever delivered.
func (p *Partition) End() int64 { return p.start + int64(len(p.recs)) }

// InFlight counts the records in the window that are not yet done.
func (p *Partition) InFlight() (n int) {
	for _, r := range p.recs {
		if r.state == Available || r.state == Acquired {
			n++
		}
	}
	return n
}

// NextAcquirable is the first offset a fetch could acquire below hwm, or
// false when none: an available record in the window, else the SPEO if the
// window has room for more locks.
func (p *Partition) NextAcquirable(hwm int64, lim Limits) (int64, bool) {
	for i, r := range p.recs {
		if r.state == Available {
			return p.start + int64(i), p.start+int64(i) < hwm
		}
	}
	end := p.End()
	return end, end < hwm && len(p.recs) < lim.MaxLocks
}

// Acquire locks for member up to limit records from the offsets in [from,
// readEnd): available records in the window and new records after it,
// while the window stays within MaxLocks. Each acquisition counts one
// delivery. It returns the acquired runs, in offset order.
func (p *Partition) Acquire(member string, from, readEnd int64, limit int, now time.Time, lim Limits) []Range {
	var out []Range
	expiry := now.Add(lim.Lock)
	take := func(off int64, r *inflight) {
		r.state, r.member, r.expiry = Acquired, member, expiry
		r.count++
		if n := len(out); n > 0 && out[n-1].Last == off-1 && out[n-1].DeliveryCount == r.count {
			out[n-1].Last = off
		} else {
			out = append(out, Range{First: off, Last: off, DeliveryCount: r.count})
		}
		limit--
	}
	for off := max(from, p.start); off < readEnd && limit > 0; off++ {
		i := int(off - p.start)
		if i >= len(p.recs) {
			if len(p.recs) >= lim.MaxLocks {
				break
			}
			p.recs = append(p.recs, inflight{})
		}
		if p.recs[i].state == Available {
			take(off, &p.recs[i])
		}
	}
	if len(out) > 0 && (p.nextExpiry.IsZero() || expiry.Before(p.nextExpiry)) {
		p.nextExpiry = expiry
	}
	return out
}

// Acknowledge applies member's acknowledgements, all or none: every offset
// named must be acquired by member, else INVALID_RECORD_STATE (Kafka's
// answer for records not acquired, acquired by another member, or whose
// lock expired); a malformed batch is INVALID_REQUEST. It reports whether a
// record became available again (a release), for waiting fetches.
func (p *Partition) Acknowledge(member string, batches []AckBatch, now time.Time, lim Limits) (released bool, err *kerr.Error) {
	for _, b := range batches {
		if b.Last < b.First || len(b.Types) == 0 || (len(b.Types) != 1 && int64(len(b.Types)) != b.Last-b.First+1) {
			return false, kerr.InvalidRequest
		}
		for _, t := range b.Types {
			if t < AckGap || t > AckRenew {
				return false, kerr.InvalidRequest
			}
		}
		if b.First < p.start || b.Last >= p.End() {
			return false, kerr.InvalidRecordState
		}
		for off := b.First; off <= b.Last; off++ {
			if r := p.recs[off-p.start]; r.state != Acquired || r.member != member {
				return false, kerr.InvalidRecordState
			}
		}
	}
	for _, b := range batches {
		for off := b.First; off <= b.Last; off++ {
			t := b.Types[0]
			if len(b.Types) > 1 {
				t = b.Types[off-b.First]
			}
			r := &p.recs[off-p.start]
			switch t {
			case AckAccept:
				r.state, r.member = Acknowledged, ""
				if p.stats != nil {
					p.stats.Accepted[min(r.count, maxCountedDelivery)].Add(1)
				}
			case AckGap, AckReject:
				r.state, r.member = Archived, ""
			case AckRelease:
				released = p.release(r, lim, ReleaseAck) || released
			case AckRenew:
				r.expiry = now.Add(lim.Lock)
				if r.expiry.Before(p.nextExpiry) || p.nextExpiry.IsZero() {
					p.nextExpiry = r.expiry
				}
			}
		}
	}
	p.advance()
	return released, nil
}

// release makes an acquired record available again, or archives it once
// it has been delivered DeliveryLimit times (Kafka's poison-record rule).
func (p *Partition) release(r *inflight, lim Limits, why Release) bool {
	r.member = ""
	archive := r.count >= lim.DeliveryLimit
	if p.stats != nil {
		if archive {
			p.stats.Archived[why].Add(1)
		} else {
			p.stats.Released[why].Add(1)
		}
	}
	if archive {
		r.state = Archived
		return false
	}
	r.state = Available
	return true
}

// Expire releases the records whose acquisition lock ended by now and
// reports whether any became available.
func (p *Partition) Expire(now time.Time, lim Limits) (released, changed bool) {
	if p.nextExpiry.IsZero() || now.Before(p.nextExpiry) {
		return false, false
	}
	p.nextExpiry = time.Time{}
	for i := range p.recs {
		r := &p.recs[i]
		if r.state != Acquired {
			continue
		}
		if !now.Before(r.expiry) {
			released = p.release(r, lim, ReleaseLockTimeout) || released
			changed = true
		} else if p.nextExpiry.IsZero() || r.expiry.Before(p.nextExpiry) {
			p.nextExpiry = r.expiry
		}
	}
	if changed {
		p.advance()
	}
	return released, changed
}

// ReleaseMember releases every record member holds (it left the group or
// its share session ended, as why says), as its locks would otherwise run
// out.
func (p *Partition) ReleaseMember(member string, lim Limits, why Release) (released, changed bool) {
	for i := range p.recs {
		if r := &p.recs[i]; r.state == Acquired && r.member == member {
			released = p.release(r, lim, why) || released
			changed = true
		}
	}
	if changed {
		p.advance()
	}
	return released, changed
}

// MoveStart moves the SPSO to at least logStart: records removed from the
// log (retention, DeleteRecords) can never be delivered.
func (p *Partition) MoveStart(logStart int64) bool {
	if logStart <= p.start {
		return false
	}
	if n := logStart - p.start; n < int64(len(p.recs)) {
		p.recs = p.recs[n:]
	} else {
		p.recs = nil
	}
	p.start = logStart
	p.advance()
	return true
}

// Reset moves the SPSO to offset and forgets the window
// (AlterShareGroupOffsets, on a group with no members).
func (p *Partition) Reset(offset int64) {
	p.start, p.recs, p.nextExpiry = offset, nil, time.Time{}
}

// advance moves the SPSO past the records that are done.
func (p *Partition) advance() {
	n := 0
	for n < len(p.recs) && (p.recs[n].state == Acknowledged || p.recs[n].state == Archived) {
		n++
	}
	if n > 0 {
		p.start += int64(n)
		p.recs = append(p.recs[:0], p.recs[n:]...)
	}
}

// Snapshot is the partition's durable state: the SPSO and the runs of the
// window that differ from "available, never delivered". An acquired
// record is stored as available with its delivery count: after a restart
// its lock is gone, its deliveries are not.
func (p *Partition) Snapshot() (start int64, batches []StateBatch) {
	for i, r := range p.recs {
		st := r.state
		if st == Acquired {
			st = Available
		}
		if st == Available && r.count == 0 {
			continue
		}
		off := p.start + int64(i)
		if n := len(batches); n > 0 && batches[n-1].Last == off-1 && batches[n-1].State == st && batches[n-1].DeliveryCount == r.count {
			batches[n-1].Last = off
			continue
		}
		batches = append(batches, StateBatch{First: off, Last: off, State: st, DeliveryCount: r.count})
	}
	return p.start, batches
}

// Restore rebuilds a partition from a Snapshot.
func Restore(start int64, batches []StateBatch) *Partition {
	p := NewPartition(start)
	for _, b := range batches {
		if b.Last < p.start {
			continue
		}
		for off := max(b.First, p.start); off <= b.Last; off++ {
			for p.End() <= off {
				p.recs = append(p.recs, inflight{})
			}
			p.recs[off-p.start] = inflight{state: b.State, count: b.DeliveryCount}
		}
	}
	p.advance()
	return p
}
