package history

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// clean builds a valid history: producer 0 writes a0..a3 to partition 0 at
// offsets 0..3, a poller reads them all, and the final log holds them.
func clean() (*History, []*Write) {
	h := New()
	var ws []*Write
	for i := range 4 {
		w := h.Invoke(0, 0, fmt.Sprintf("a%d", i))
		h.OK(w, 0, int64(i))
		ws = append(ws, w)
	}
	for i := range 4 {
		h.Read(1, 0, int64(i), fmt.Sprintf("a%d", i))
	}
	return h, ws
}

func finalOf(values ...string) []Record {
	var rs []Record
	for i, v := range values {
		if v != "" {
			rs = append(rs, Record{int64(i), v})
		}
	}
	return rs
}

// only checks that r found exactly want of kind k and no other kind.
func only(t *testing.T, r *Report, k Kind, want int) {
	t.Helper()
	for _, kind := range Kinds {
		n := r.Count(kind)
		if kind == k && n != want {
			t.Errorf("%s: %d, want %d\n%s", kind, n, want, r)
		}
		if kind != k && n != 0 {
			t.Errorf("%s: %d, want none\n%s", kind, n, r)
		}
	}
	if !strings.Contains(r.String(), string(k)+": ") {
		t.Errorf("the summary does not name %s:\n%s", k, r)
	}
}

func TestCleanHistory(t *testing.T) {
	h, _ := clean()
	// Outcomes unknown or failed, and absent: nothing to find.
	h.Indeterminate(h.Invoke(0, 0, "maybe"), errors.New("timeout"))
	h.Fail(h.Invoke(0, 0, "refused"), errors.New("MESSAGE_TOO_LARGE"))
	h.Invoke(0, 0, "never-completed")
	// An indeterminate write that did land is fine too.
	h.Indeterminate(h.Invoke(2, 0, "landed"), errors.New("connection reset"))
	h.Read(1, 0, 4, "landed")
	h.Final(0, 0, 5, finalOf("a0", "a1", "a2", "a3", "landed"))
	h.Event("kill -9 node %d", 2)
	if n := h.AckedAfter(0); n != 4 {
		t.Errorf("AckedAfter(0) = %d, want 4", n)
	}
	if n := h.AckedAfter(h.Now()); n != 0 {
		t.Errorf("AckedAfter(now) = %d, want 0", n)
	}
	r := h.Check()
	if !r.Valid() {
		t.Fatalf("clean history found invalid:\n%s", r)
	}
	s := r.String()
	for _, want := range []string{"8 produces (4 ok, 1 failed, 3 indeterminate)", "5 records read by 1 pollers", "5 in the final logs", "kill -9 node 2", "no anomalies"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

func TestLost(t *testing.T) {
	h, _ := clean()
	h.Final(0, 0, 3, finalOf("a0", "a1", "a2")) // a3 acknowledged at 3, gone
	r := h.Check()
	// The poller saw a3 at 3 and the final log ends before it: that read
	// disappeared too.
	if r.Count(Lost) != 1 || r.Anomalies[Lost][0].Value != "a3" || r.Count(Disappeared) != 1 {
		t.Errorf("report:\n%s", r)
	}
	if !strings.Contains(r.String(), `"a3" at 0/3: acknowledged at`) || !strings.Contains(r.String(), "ends at 3") {
		t.Errorf("summary:\n%s", r)
	}
}

// An acknowledged record no poller got to, missing from the final log.
func TestLostUnread(t *testing.T) {
	h := New()
	h.OK(h.Invoke(0, 0, "a0"), 0, 0)
	h.OK(h.Invoke(0, 0, "a1"), 0, 1)
	h.Final(0, 0, 1, finalOf("a0"))
	only(t, h.Check(), Lost, 1)
}

// Without a final read, pollers that read past an acknowledged offset
// and never met the record witness its loss; one not yet reached is not
// judged.
func TestLostSkippedByPollers(t *testing.T) {
	h := New()
	for i := range 4 {
		h.OK(h.Invoke(0, 0, fmt.Sprintf("a%d", i)), 0, int64(i))
	}
	h.Read(1, 0, 0, "a0")
	h.Read(1, 0, 2, "a2") // a1 at 1 skipped; a3 at 3 not reached
	r := h.Check()
	only(t, r, Lost, 1)
	if r.Anomalies[Lost][0].Value != "a1" || !strings.Contains(r.String(), "pollers read up to offset 2") {
		t.Errorf("report:\n%s", r)
	}
}

func TestDuplicated(t *testing.T) {
	h, _ := clean()
	h.Final(0, 0, 5, finalOf("a0", "a1", "a2", "a3", "a1")) // a1 again at 4
	r := h.Check()
	// a1 at 4 is also not where it was acknowledged.
	if r.Count(Duplicated) != 1 || r.Anomalies[Duplicated][0].Value != "a1" || r.Count(OffsetMismatch) != 1 || r.Count(Lost) != 0 {
		t.Errorf("report:\n%s", r)
	}
}

// An indeterminate produce may land once, not twice.
func TestDuplicatedIndeterminate(t *testing.T) {
	h, _ := clean()
	h.Indeterminate(h.Invoke(0, 0, "x"), errors.New("timeout"))
	h.Final(0, 0, 6, finalOf("a0", "a1", "a2", "a3", "x", "x"))
	only(t, h.Check(), Duplicated, 1)
}

// Offsets against the order the producer sent: written in order but
// landed in another (a retry overtaking), each acknowledged where it
// landed.
func TestReorderedSendOrder(t *testing.T) {
	h := New()
	w0, w1, w2 := h.Invoke(0, 0, "a0"), h.Invoke(0, 0, "a1"), h.Invoke(0, 0, "a2")
	h.OK(w0, 0, 0)
	h.OK(w2, 0, 1)
	h.OK(w1, 0, 2)
	h.Final(0, 0, 3, finalOf("a0", "a2", "a1"))
	r := h.Check()
	// a2 (sent #2) is at 1, before a1 (sent #1) at 2.
	if r.Count(Reordered) != 1 || r.Anomalies[Reordered][0].Value != "a2" {
		t.Errorf("report:\n%s", r)
	}
	only(t, r, Reordered, 1)
}

// Acknowledged in another order than their offsets.
func TestReorderedAckOrder(t *testing.T) {
	h := New()
	w0, w1 := h.Invoke(0, 0, "a0"), h.Invoke(0, 0, "a1")
	h.OK(w1, 0, 1)
	h.OK(w0, 0, 0)
	h.Final(0, 0, 2, finalOf("a0", "a1"))
	only(t, h.Check(), Reordered, 1)
}

// Order is per producer and per partition: interleaving across either is
// fine.
func TestOrderPerProducerAndPartition(t *testing.T) {
	h := New()
	a, b, c, d := h.Invoke(0, 0, "p0-0"), h.Invoke(1, 0, "p1-0"), h.Invoke(0, 1, "p0-1"), h.Invoke(0, 0, "p0-2")
	h.OK(b, 0, 0)
	h.OK(c, 1, 0)
	h.OK(a, 0, 1)
	h.OK(d, 0, 2)
	h.Final(0, 0, 3, finalOf("p1-0", "p0-0", "p0-2"))
	h.Final(1, 0, 1, finalOf("p0-1"))
	if r := h.Check(); !r.Valid() {
		t.Errorf("report:\n%s", r)
	}
}

func TestPhantomNeverProduced(t *testing.T) {
	h, _ := clean()
	h.Read(1, 0, 4, "ghost")
	h.Final(0, 0, 5, finalOf("a0", "a1", "a2", "a3", "ghost"))
	only(t, h.Check(), Phantom, 1)
}

func TestPhantomDefiniteFailure(t *testing.T) {
	h, _ := clean()
	h.Fail(h.Invoke(0, 0, "refused"), errors.New("INVALID_RECORD"))
	h.Final(0, 0, 5, finalOf("a0", "a1", "a2", "a3", "refused"))
	r := h.Check()
	only(t, r, Phantom, 1)
	if !strings.Contains(r.String(), "definitely failed (INVALID_RECORD)") {
		t.Errorf("summary:\n%s", r)
	}
}

func TestOffsetMismatch(t *testing.T) {
	h := New()
	h.OK(h.Invoke(0, 0, "a0"), 0, 0)
	h.OK(h.Invoke(0, 0, "a1"), 0, 5) // acknowledged at 5, lands at 1
	h.Read(1, 0, 1, "a1")
	h.Final(0, 0, 2, finalOf("a0", "a1"))
	r := h.Check()
	// Read at 1 and in the final log at 1: one position, one mismatch;
	// not lost, since the final log has it.
	only(t, r, OffsetMismatch, 1)
	if !strings.Contains(r.String(), "acknowledged at 0/5, read at 0/1") {
		t.Errorf("summary:\n%s", r)
	}
}

// A poller read a record that a failover then replaced: offset 2 read as
// a2, the final log holds b0 there (and a2 nowhere: also lost).
func TestDisappeared(t *testing.T) {
	h := New()
	for i := range 3 {
		h.OK(h.Invoke(0, 0, fmt.Sprintf("a%d", i)), 0, int64(i))
		h.Read(7, 0, int64(i), fmt.Sprintf("a%d", i))
	}
	h.OK(h.Invoke(1, 0, "b0"), 0, 2)
	h.Final(0, 0, 3, finalOf("a0", "a1", "b0"))
	r := h.Check()
	if r.Count(Disappeared) != 1 || r.Count(Lost) != 1 || r.Count(Duplicated) != 0 || r.Count(Phantom) != 0 {
		t.Errorf("report:\n%s", r)
	}
	if !strings.Contains(r.String(), `read by poller 7 at`) || !strings.Contains(r.String(), `holds "b0" there`) {
		t.Errorf("summary:\n%s", r)
	}
}

// An unacknowledged record a poller saw, gone later: only Disappeared.
func TestDisappearedUnacknowledged(t *testing.T) {
	h, _ := clean()
	h.Indeterminate(h.Invoke(0, 0, "x"), errors.New("timeout"))
	h.Read(1, 0, 4, "x")
	h.Final(0, 0, 4, finalOf("a0", "a1", "a2", "a3"))
	only(t, h.Check(), Disappeared, 1)
}

// Reads below the final log's start (retention) are not judged.
func TestReadsBelowLogStart(t *testing.T) {
	h, _ := clean()
	h.Final(0, 2, 4, finalOf("", "", "a2", "a3"))
	r := h.Check()
	if r.Count(Disappeared) != 0 {
		t.Errorf("report:\n%s", r)
	}
}

func TestSummaryTruncates(t *testing.T) {
	h := New()
	for i := range 12 {
		h.Read(0, 0, int64(i), fmt.Sprintf("ghost%d", i))
	}
	r := h.Check()
	if r.Count(Phantom) != 12 || !strings.Contains(r.String(), "... and 7 more") {
		t.Errorf("report:\n%s", r)
	}
}

func TestMisuse(t *testing.T) {
	h := New()
	w := h.Invoke(0, 0, "v")
	for name, fn := range map[string]func(){
		"value sent twice":    func() { h.Invoke(1, 0, "v") },
		"outcome given twice": func() { h.OK(w, 0, 0); h.Fail(w, errors.New("x")) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
}
