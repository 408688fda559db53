// Package history records what clients did to a Kafka cluster under
// faults, and checks it the way Jepsen checks a queue: every produce
// (invoked, then acknowledged at a partition and offset, failed for
// certain, or with an unknown outcome) and every record a poller read are
// kept; Check then looks for acknowledged records lost, records written
// twice, a producer's records out of order, records read that were never
// written (or whose produce definitely failed), records read at another
// offset than acknowledged, and records a poller saw that the final log no
// longer holds.
//
// Values identify records: each produce must send a value no other
// produce in the history sent.
package history

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Outcome is what the producer learned of one produce.
type Outcome int

const (
	// Pending: invoked, no outcome recorded (taken as Indeterminate).
	Pending Outcome = iota
	// OK: acknowledged at a partition and offset.
	OK
	// Failed: definitely not written (refused before it was sent, or a
	// non-retriable answer to the request).
	Failed
	// Indeterminate: timed out or the connection was lost; it may or may
	// not have been written.
	Indeterminate
)

func (o Outcome) String() string {
	return [...]string{"pending", "ok", "failed", "indeterminate"}[o]
}

// Write is one produce.
type Write struct {
	Producer  int
	Seq       int // the producer's n-th produce, from 0
	Partition int32
	Value     string
	Outcome   Outcome
	Offset    int64  // OK only
	Err       string // Failed and Indeterminate
	Invoked   time.Duration
	Completed time.Duration
}

// Read is one record a poller got.
type Read struct {
	Reader    int
	Partition int32
	Offset    int64
	Value     string
	At        time.Duration
}

// Record is a record of a final read.
type Record struct {
	Offset int64
	Value  string
}

// finalLog is a partition read in full after the faults healed: its log
// start offset and every record from there to the high watermark.
type finalLog struct {
	start, end int64
	at         map[int64]string
}

type event struct {
	at   time.Duration
	what string
}

// History is safe for concurrent use by producers and pollers.
type History struct {
	mu      sync.Mutex
	start   time.Time
	writes  []*Write
	byValue map[string]*Write
	seq     map[int]int
	reads   []Read
	final   map[int32]*finalLog
	events  []event
}

// New starts a history; times are kept relative to now.
func New() *History {
	return &History{start: time.Now(), byValue: map[string]*Write{}, seq: map[int]int{}, final: map[int32]*finalLog{}}
}

func (h *History) now() time.Duration { return time.Since(h.start) }

// Invoke records that producer is about to send value to partition (-1
// when a partitioner picks it); the returned Write takes the outcome. A
// value sent twice is the test's bug: Invoke panics.
func (h *History) Invoke(producer int, partition int32, value string) *Write {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.byValue[value]; dup {
		panic(fmt.Sprintf("history: value %q produced twice; each produce needs its own", value))
	}
	w := &Write{Producer: producer, Seq: h.seq[producer], Partition: partition, Value: value, Offset: -1, Invoked: h.now()}
	h.seq[producer]++
	h.writes = append(h.writes, w)
	h.byValue[value] = w
	return w
}

// OK records that w was acknowledged at partition and offset.
func (h *History) OK(w *Write, partition int32, offset int64) {
	h.complete(w, OK, nil, func() { w.Partition, w.Offset = partition, offset })
}

// Fail records that w was definitely not written.
func (h *History) Fail(w *Write, err error) { h.complete(w, Failed, err, nil) }

// Indeterminate records that w's outcome is unknown.
func (h *History) Indeterminate(w *Write, err error) { h.complete(w, Indeterminate, err, nil) }

func (h *History) complete(w *Write, o Outcome, err error, set func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.Outcome != Pending {
		panic(fmt.Sprintf("history: outcome of %q recorded twice (%v, then %v)", w.Value, w.Outcome, o))
	}
	w.Outcome, w.Completed = o, h.now()
	if err != nil {
		w.Err = err.Error()
	}
	if set != nil {
		set()
	}
}

// Read records that reader polled value at partition and offset.
func (h *History) Read(reader int, partition int32, offset int64, value string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads = append(h.reads, Read{Reader: reader, Partition: partition, Offset: offset, Value: value, At: h.now()})
}

// Final records a full read of partition after healing: every record
// from its log start offset start up to (not including) end, the high
// watermark.
func (h *History) Final(partition int32, start, end int64, records []Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := &finalLog{start: start, end: end, at: map[int64]string{}}
	for _, r := range records {
		f.at[r.Offset] = r.Value
	}
	h.final[partition] = f
}

// Now is the time since the history started, as its records have it.
func (h *History) Now() time.Duration { return h.now() }

// AckedAfter counts the produces acknowledged after at (liveness: the
// cluster took writes again after a fault healed).
func (h *History) AckedAfter(at time.Duration) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, w := range h.writes {
		if w.Outcome == OK && w.Completed > at {
			n++
		}
	}
	return n
}

// Event notes a fault or another step of the test, for the report's
// timeline.
func (h *History) Event(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, event{h.now(), fmt.Sprintf(format, args...)})
}

// Kind names an anomaly.
type Kind string

const (
	// Lost: acknowledged, and the final log of its partition lacks it
	// (or, where a partition was not read in full, pollers read past its
	// offset and never met it).
	Lost Kind = "lost"
	// Duplicated: one produced value at two offsets.
	Duplicated Kind = "duplicated"
	// Reordered: a producer's records on one partition at offsets in
	// another order than it sent them, or acknowledged in another order
	// than their offsets.
	Reordered Kind = "reordered"
	// Phantom: a value read that no produce sent, or whose produce
	// definitely failed.
	Phantom Kind = "phantom"
	// OffsetMismatch: read at another partition or offset than it was
	// acknowledged at.
	OffsetMismatch Kind = "offset-mismatch"
	// Disappeared: a poller read a record at an offset where the final
	// log holds something else, or nothing.
	Disappeared Kind = "disappeared"
)

// Kinds lists every anomaly in the order reports show them.
var Kinds = []Kind{Lost, Duplicated, Reordered, Phantom, OffsetMismatch, Disappeared}

// Anomaly is one finding.
type Anomaly struct {
	Kind      Kind
	Partition int32
	Offset    int64
	Value     string
	Detail    string
}

// Report is the result of Check.
type Report struct {
	Writes    map[Outcome]int
	Reads     int
	Readers   int
	Final     int // records in the final logs
	Anomalies map[Kind][]Anomaly
	events    []event
}

// Valid reports whether no anomaly was found.
func (r *Report) Valid() bool { return len(r.Anomalies) == 0 }

// Count is the number of anomalies of kind k.
func (r *Report) Count(k Kind) int { return len(r.Anomalies[k]) }

// examples is how many anomalies of each kind String shows.
const examples = 5

// String summarizes the history, the timeline of events and the first
// anomalies of each kind.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d produces (%d ok, %d failed, %d indeterminate), %d records read by %d pollers, %d in the final logs\n",
		r.Writes[OK]+r.Writes[Failed]+r.Writes[Indeterminate], r.Writes[OK], r.Writes[Failed], r.Writes[Indeterminate], r.Reads, r.Readers, r.Final)
	for _, e := range r.events {
		fmt.Fprintf(&b, "  %7.3fs %s\n", e.at.Seconds(), e.what)
	}
	if r.Valid() {
		b.WriteString("no anomalies\n")
		return b.String()
	}
	for _, k := range Kinds {
		as := r.Anomalies[k]
		if len(as) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s: %d\n", k, len(as))
		for _, a := range as[:min(len(as), examples)] {
			fmt.Fprintf(&b, "  %q at %d/%d: %s\n", a.Value, a.Partition, a.Offset, a.Detail)
		}
		if len(as) > examples {
			fmt.Fprintf(&b, "  ... and %d more\n", len(as)-examples)
		}
	}
	return b.String()
}

// pos is where a value was found.
type pos struct {
	partition int32
	offset    int64
}

// Check runs every check over the history recorded so far.
func (h *History) Check() *Report {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := &Report{Writes: map[Outcome]int{}, Reads: len(h.reads), Anomalies: map[Kind][]Anomaly{}, events: slices.Clone(h.events)}
	add := func(k Kind, p int32, off int64, v, format string, args ...any) {
		r.Anomalies[k] = append(r.Anomalies[k], Anomaly{k, p, off, v, fmt.Sprintf(format, args...)})
	}
	for _, w := range h.writes {
		o := w.Outcome
		if o == Pending {
			o = Indeterminate
		}
		r.Writes[o]++
	}
	readers := map[int]bool{}
	for _, rd := range h.reads {
		readers[rd.Reader] = true
	}
	r.Readers = len(readers)

	// Every place each value was seen, polled or in a final log.
	seen := map[string][]pos{}
	note := func(v string, p pos) {
		if !slices.Contains(seen[v], p) {
			seen[v] = append(seen[v], p)
		}
	}
	for _, rd := range h.reads {
		note(rd.Value, pos{rd.Partition, rd.Offset})
	}
	parts := slices.Sorted(maps.Keys(h.final))
	for _, p := range parts {
		f := h.final[p]
		r.Final += len(f.at)
		for _, off := range slices.Sorted(maps.Keys(f.at)) {
			note(f.at[off], pos{p, off})
		}
	}
	values := slices.SortedFunc(maps.Keys(seen), func(a, b string) int {
		pa, pb := seen[a][0], seen[b][0]
		return cmp.Or(cmp.Compare(pa.partition, pb.partition), cmp.Compare(pa.offset, pb.offset), strings.Compare(a, b))
	})

	for _, v := range values {
		at := seen[v]
		w := h.byValue[v]
		switch {
		case w == nil:
			add(Phantom, at[0].partition, at[0].offset, v, "read, never produced")
		case w.Outcome == Failed:
			add(Phantom, at[0].partition, at[0].offset, v, "read, though its produce definitely failed (%s)", w.Err)
		}
		if len(at) > 1 {
			add(Duplicated, at[0].partition, at[0].offset, v, "also at %s", positions(at[1:]))
		}
		if w != nil && w.Outcome == OK {
			for _, p := range at {
				if p != (pos{w.Partition, w.Offset}) {
					add(OffsetMismatch, w.Partition, w.Offset, v, "acknowledged at %d/%d, read at %d/%d", w.Partition, w.Offset, p.partition, p.offset)
				}
			}
		}
	}

	// Without a final read of a partition, the pollers are the witnesses:
	// one that read past an acknowledged offset should have met it.
	polledTo := map[int32]int64{}
	for _, rd := range h.reads {
		if o, ok := polledTo[rd.Partition]; !ok || rd.Offset > o {
			polledTo[rd.Partition] = rd.Offset
		}
	}
	for _, w := range h.writes {
		if w.Outcome != OK {
			continue
		}
		f := h.final[w.Partition]
		if f == nil {
			if to, ok := polledTo[w.Partition]; ok && to > w.Offset && len(seen[w.Value]) == 0 {
				add(Lost, w.Partition, w.Offset, w.Value, "acknowledged at %.3fs; never polled, though pollers read up to offset %d", w.Completed.Seconds(), to)
			}
			continue
		}
		inFinal := false
		for _, p := range seen[w.Value] {
			if f.at[p.offset] == w.Value && p.partition == w.Partition {
				inFinal = true
			}
		}
		if !inFinal {
			add(Lost, w.Partition, w.Offset, w.Value, "acknowledged at %.3fs; the final log [%d, %d) %s", w.Completed.Seconds(), f.start, f.end, f.describe(w.Offset))
		}
	}

	h.checkOrder(add, seen)

	for _, rd := range h.reads {
		f := h.final[rd.Partition]
		if f == nil || rd.Offset < f.start {
			continue // not read in full, or removed by retention
		}
		if got, ok := f.at[rd.Offset]; !ok || got != rd.Value {
			add(Disappeared, rd.Partition, rd.Offset, rd.Value, "read by poller %d at %.3fs; the final log %s", rd.Reader, rd.At.Seconds(), f.describe(rd.Offset))
		}
	}
	return r
}

func (f *finalLog) describe(off int64) string {
	if v, ok := f.at[off]; ok {
		return fmt.Sprintf("holds %q there", v)
	}
	if off >= f.end {
		return fmt.Sprintf("ends at %d", f.end)
	}
	return "has nothing there"
}

func positions(ps []pos) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprintf("%d/%d", p.partition, p.offset)
	}
	return strings.Join(s, ", ")
}

// checkOrder checks each producer's records on each partition: in the
// order it sent them, their offsets (where they ended up, else where they
// were acknowledged) must increase; in the order they were acknowledged,
// too.
func (h *History) checkOrder(add func(Kind, int32, int64, string, string, ...any), seen map[string][]pos) {
	type key struct {
		producer  int
		partition int32
	}
	sent := map[key][]*Write{}
	where := map[*Write]int64{}
	for _, w := range h.writes {
		p, off := w.Partition, w.Offset
		if w.Outcome != OK {
			if len(seen[w.Value]) == 0 {
				continue
			}
			p, off = seen[w.Value][0].partition, seen[w.Value][0].offset
		}
		if p < 0 {
			continue
		}
		if f := h.final[p]; f != nil {
			for _, s := range seen[w.Value] {
				if s.partition == p && f.at[s.offset] == w.Value {
					off = s.offset
				}
			}
		}
		k := key{w.Producer, p}
		sent[k] = append(sent[k], w) // h.writes is in invocation order
		where[w] = off
	}
	for _, k := range slices.SortedFunc(maps.Keys(sent), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.producer, b.producer), cmp.Compare(a.partition, b.partition))
	}) {
		ws := sent[k]
		for i := 1; i < len(ws); i++ {
			prev, w := ws[i-1], ws[i]
			if where[w] <= where[prev] {
				add(Reordered, k.partition, where[w], w.Value, "producer %d sent it (#%d) after %q (#%d, at offset %d)", k.producer, w.Seq, prev.Value, prev.Seq, where[prev])
			}
		}
		var acked []*Write
		for _, w := range ws {
			if w.Outcome == OK {
				acked = append(acked, w)
			}
		}
		slices.SortStableFunc(acked, func(a, b *Write) int { return cmp.Compare(a.Completed, b.Completed) })
		for i := 1; i < len(acked); i++ {
			prev, w := acked[i-1], acked[i]
			if w.Offset < prev.Offset {
				add(Reordered, k.partition, w.Offset, w.Value, "producer %d had it acknowledged at %.3fs after %q at offset %d", k.producer, w.Completed.Seconds(), prev.Value, prev.Offset)
			}
		}
	}
}
