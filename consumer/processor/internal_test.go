package processor

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
)

func TestTrackerCommitPoint(t *testing.T) {
	tests := []struct {
		name     string
		offsets  []int64   // dispatched, in order
		finished [][]int64 // finish calls, in order
		abandon  []int64   // finished unsuccessfully
		want     int64     // commit point; -1: nothing to commit
	}{
		{"nothing finished", []int64{5, 6, 7}, nil, nil, -1},
		{"in order", []int64{5, 6, 7}, [][]int64{{5}, {6}}, nil, 7},
		{"gap below", []int64{5, 6, 7}, [][]int64{{6}, {7}}, nil, -1},
		{"gap filled", []int64{5, 6, 7}, [][]int64{{7}, {6}, {5}}, nil, 8},
		{"offsets not contiguous", []int64{3, 9, 20}, [][]int64{{3, 9}, {20}}, nil, 21},
		{"abandoned holds back", []int64{1, 2, 3}, [][]int64{{1}, {3}}, []int64{2}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(context.Background(), context.Background(), kafkit.TopicPartition{Topic: "t"}, 100, nil, nil)
			for _, o := range tt.offsets {
				tr.dispatched(o)
			}
			for _, f := range tt.finished {
				tr.start()
				tr.finish(f, true)
			}
			if tt.abandon != nil {
				tr.start()
				tr.finish(tt.abandon, false)
			}
			got, ok := tr.toCommit()
			if !ok {
				got = -1
			}
			if got != tt.want {
				t.Fatalf("commit point %d, want %d", got, tt.want)
			}
			if ok {
				tr.setCommitted(got)
				if _, again := tr.toCommit(); again {
					t.Error("offset to commit again after it was committed")
				}
			}
		})
	}
}

func TestTrackerBackpressureAndRetire(t *testing.T) {
	var mu sync.Mutex
	var events []string
	rec := func(what string) func(kafkit.TopicPartition) {
		return func(kafkit.TopicPartition) { mu.Lock(); events = append(events, what); mu.Unlock() }
	}
	tr := newTracker(context.Background(), context.Background(), kafkit.TopicPartition{Topic: "t"}, 4, rec("pause"), rec("resume"))
	for o := range int64(6) {
		tr.dispatched(o)
	}
	if !slices.Equal(events, []string{"pause"}) {
		t.Fatalf("after 6 dispatched with max 4: %v", events)
	}
	tr.start()
	tr.finish([]int64{0, 1, 2}, true) // 3 in flight: not yet half of 4
	if len(events) != 1 {
		t.Fatalf("resumed too early: %v", events)
	}
	tr.start()
	tr.finish([]int64{3}, true)
	if !slices.Equal(events, []string{"pause", "resume"}) {
		t.Fatalf("after draining to 2: %v", events)
	}

	// Stop with running work: idle closes when it finishes; work finished
	// after retire does not move the commit point.
	tr.start()
	tr.stopWork()
	if tr.start() {
		t.Error("start succeeded on a stopped tracker")
	}
	select {
	case <-tr.idle:
		t.Fatal("idle while work runs")
	default:
	}
	if tr.stop.Err() == nil {
		t.Error("stop ctx not cancelled")
	}
	tr.retire()
	if tr.abandon.Err() == nil {
		t.Error("abandon ctx not cancelled")
	}
	tr.finish([]int64{4}, true)
	<-tr.idle
	if o, _ := tr.toCommit(); o != 4 {
		t.Errorf("commit point %d after retire, want 4", o)
	}
}

func TestSchedulerLanes(t *testing.T) {
	ta := newTracker(context.Background(), context.Background(), kafkit.TopicPartition{Topic: "t"}, 100, nil, nil)
	tb := newTracker(context.Background(), context.Background(), kafkit.TopicPartition{Topic: "t", Partition: 1}, 100, nil, nil)
	s := newScheduler(2)
	r := func(o int64) *kafkit.Record { return &kafkit.Record{Offset: o} }
	for o := range int64(3) {
		s.add(laneKey{t: ta}, r(o))
	}
	s.add(laneKey{t: tb}, r(10))
	s.add(laneKey{t: tb, key: "k"}, r(11))

	l1, b1 := s.take()
	l2, b2 := s.take()
	l3, b3 := s.take()
	if l1.key.t != ta || len(b1) != 2 || b1[0].Offset != 0 || b1[1].Offset != 1 {
		t.Fatalf("first take: %v", b1)
	}
	if b2[0].Offset != 10 || b3[0].Offset != 11 {
		t.Fatalf("other lanes: %v %v", b2, b3)
	}
	// Lane a is busy: its last record waits until done.
	got := make(chan []*kafkit.Record)
	var l4 *lane
	go func() { var b []*kafkit.Record; l4, b = s.take(); got <- b }()
	select {
	case b := <-got:
		t.Fatalf("took %v from a busy lane", b)
	case <-time.After(20 * time.Millisecond):
	}
	s.done(l1)
	if b := <-got; len(b) != 1 || b[0].Offset != 2 {
		t.Fatalf("after done: %v", b)
	}
	s.done(l4)
	s.done(l2)
	s.done(l3)

	// Dropped records never start; a stopped tracker's lane is skipped.
	s.add(laneKey{t: tb}, r(12))
	tb.stopWork()
	s.drop(tb)
	s.add(laneKey{t: ta}, r(3))
	if l, b := s.take(); l.key.t != ta || b[0].Offset != 3 {
		t.Fatalf("take after drop: %v", b)
	}
	go s.close()
	if l, _ := s.take(); l != nil {
		t.Fatal("take after close returned work")
	}
}

func TestDeadLetterRoundTrip(t *testing.T) {
	ts := time.UnixMilli(1700000000123)
	orig := &kafkit.Record{Topic: "orders", Partition: 7, Offset: 1 << 40, Key: []byte("k"), Value: []byte("v"),
		Headers: []kafkit.Header{{Key: "traceparent", Value: []byte("x")}}, Timestamp: ts, TimestampType: kafkit.LogAppendTime}
	cause := Permanent(&fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist})
	dl := deadLetterRecord("orders.DLT", orig, "g1", cause)
	if dl.Topic != "orders.DLT" || dl.Partition != kafkit.AnyPartition || string(dl.Key) != "k" || string(dl.Value) != "v" || dl.Headers[0].Key != "traceparent" {
		t.Fatalf("dead-letter record %+v", dl)
	}
	if len(orig.Headers) != 1 {
		t.Fatal("original headers modified")
	}
	got, err := ParseDeadLetter(dl)
	if err != nil {
		t.Fatal(err)
	}
	want := DeadLetter{Topic: "orders", Partition: 7, Offset: 1 << 40, Timestamp: ts, TimestampType: kafkit.LogAppendTime,
		Group: "g1", Error: cause.Error(), ErrorType: "*fs.PathError"}
	if !got.Timestamp.Equal(want.Timestamp) {
		t.Errorf("timestamp %v, want %v", got.Timestamp, want.Timestamp)
	}
	got.Timestamp = want.Timestamp
	if got != want {
		t.Errorf("parsed %+v, want %+v", got, want)
	}
	if _, err := ParseDeadLetter(orig); !errors.Is(err, ErrNotDeadLetter) {
		t.Errorf("ParseDeadLetter of a plain record: %v", err)
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad")
	if IsPermanent(base) || Permanent(nil) != nil {
		t.Fatal("plain error or nil treated as permanent")
	}
	wrapped := errors.Join(errors.New("ctx"), Permanent(base))
	if !IsPermanent(wrapped) || !errors.Is(wrapped, base) {
		t.Error("Permanent lost through wrapping")
	}
}

func TestTyped(t *testing.T) {
	var got []int
	h := Typed(kafkit.StringSerde{}, kafkit.JSONSerde[int]{}, func(_ context.Context, r consumer.TypedRecord[string, int]) error {
		got = append(got, r.Value)
		return nil
	})
	if err := h(context.Background(), &kafkit.Record{Topic: "t", Value: []byte("42")}); err != nil {
		t.Fatal(err)
	}
	err := h(context.Background(), &kafkit.Record{Topic: "t", Offset: 9, Value: []byte("x")})
	var de *consumer.DeserializeError
	if !IsPermanent(err) || !errors.As(err, &de) || de.Record.Offset != 9 {
		t.Fatalf("bad value: %v, want a permanent DeserializeError", err)
	}
	if !slices.Equal(got, []int{42}) {
		t.Errorf("handled %v", got)
	}
}
