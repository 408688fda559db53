package producer

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

func testAccumulator(t *testing.T, cfg Config) (*accumulator, *sender, *partQueue) {
	t.Helper()
	cfg.BootstrapServers = []string{"x:1"}
	s := cfg.settings()
	snd := &sender{s: &s}
	a := newAccumulator(&s, func() {})
	snd.acc = a
	return a, snd, a.queue(kafkit.TopicPartition{Topic: "t", Partition: 0})
}

// appendRecord appends r as Send does once it chose r's partition and
// timestamp.
func appendRecord(ctx context.Context, a *accumulator, deadline *blockDeadline, pq *partQueue, r *kafkit.Record) error {
	return a.append(ctx, deadline, pq, pending{rec: r}, r.Timestamp.UnixMilli(), recordbatch.PayloadLen(r.Key, r.Value, r.Headers), nil)
}

func appendN(t *testing.T, a *accumulator, pq *partQueue, n, size int) {
	t.Helper()
	for range n {
		r := &kafkit.Record{Topic: "t", Value: make([]byte, size), Timestamp: time.UnixMilli(1)}
		if err := appendRecord(context.Background(), a, &blockDeadline{at: time.Now().Add(time.Second)}, pq, r); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadiness(t *testing.T) {
	a, s, pq := testAccumulator(t, Config{Linger: 5 * time.Millisecond, BatchSize: 1000})
	appendN(t, a, pq, 1, 10)
	created := pq.batches[0].created

	if b, wait := s.takeReady(pq, created.Add(time.Millisecond), false, 1<<20, true); b != nil || !wait.Equal(created.Add(5*time.Millisecond)) {
		t.Fatalf("lingering batch taken (%v) or wrong wake-up %v", b, wait)
	}
	if b, _ := s.takeReady(pq, created.Add(time.Millisecond), true, 1<<20, true); b == nil {
		t.Fatal("flush did not make the batch ready")
	}

	// A full batch is ready at once; so is any batch followed by another.
	appendN(t, a, pq, 12, 100)
	if len(pq.batches) != 2 || !pq.batches[0].full {
		t.Fatalf("%d batches, first full=%v", len(pq.batches), len(pq.batches) > 0 && pq.batches[0].full)
	}
	now := pq.batches[0].created
	if b, _ := s.takeReady(pq, now, false, 1<<20, true); b == nil || b.sizer.Len() > 1000 {
		t.Fatalf("full batch not taken or over batch.size: %v", b)
	}
	// The request has no room left for the next batch.
	if b, _ := s.takeReady(pq, now, true, 10, false); b != nil {
		t.Fatal("batch taken into a full request")
	}
}

func TestRequeueKeepsSequenceOrder(t *testing.T) {
	a, s, pq := testAccumulator(t, Config{BatchSize: 200, Linger: -1})
	appendN(t, a, pq, 8, 150) // one record per batch
	var taken []*batch
	for range 4 {
		b, _ := s.takeReady(pq, time.Now(), false, 1<<20, true)
		if b == nil {
			t.Fatal("no batch ready")
		}
		b.seq, b.raw = int32(len(taken)), []byte{0}
		taken = append(taken, b)
	}
	// Responses fail in an order different from the sequence order.
	for _, i := range []int{2, 0, 3, 1} {
		s.requeue(taken[i])
	}
	for i, b := range pq.batches[:4] {
		if b != taken[i] {
			t.Fatalf("position %d holds seq %d", i, b.seq)
		}
	}
	for _, b := range pq.batches[4:] {
		if b.raw != nil {
			t.Fatal("an unsent batch moved ahead of a retried one")
		}
	}
}

func TestAppendAfterCloseFails(t *testing.T) {
	a, _, pq := testAccumulator(t, Config{})
	appendN(t, a, pq, 3, 10)
	left := a.close()
	if len(left) != 1 || len(left[0]) != 1 || len(left[0][0].records) != 3 {
		t.Fatalf("close returned %v", left)
	}
	r := &kafkit.Record{Topic: "t", Value: []byte("x")}
	if err := appendRecord(context.Background(), a, &blockDeadline{at: time.Now()}, pq, r); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	other := a.queue(kafkit.TopicPartition{Topic: "u", Partition: 1})
	if err := appendRecord(context.Background(), a, &blockDeadline{at: time.Now()}, other, r); !errors.Is(err, ErrClosed) {
		t.Fatalf("append to a new partition after close: %v", err)
	}
}

func TestAddSeqWraps(t *testing.T) {
	if got := addSeq(math.MaxInt32-1, 3); got != 1 {
		t.Fatalf("addSeq(MaxInt32-1, 3) = %d, want 1", got)
	}
	if got := addSeq(5, 10); got != 15 {
		t.Fatalf("addSeq(5, 10) = %d", got)
	}
}

// TestMemoryBlocksForMaxBlock runs in a synctest bubble: Send's wait for
// buffer.memory lasts exactly max.block.ms of (fake) time, and a release
// during the wait lets it through.
func TestMemoryBlocksForMaxBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var m memory
		m.init(1000, time.Minute)
		ctx := context.Background()
		if err := m.acquire(ctx, time.Now().Add(time.Minute), 800); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := m.acquire(ctx, time.Now().Add(time.Minute), 800)
		if !errors.Is(err, ErrBufferFull) || time.Since(start) != time.Minute {
			t.Fatalf("got %v after %v, want ErrBufferFull after 1m", err, time.Since(start))
		}
		go func() {
			time.Sleep(10 * time.Second)
			m.release(800)
		}()
		start = time.Now()
		if err := m.acquire(ctx, time.Now().Add(time.Minute), 800); err != nil || time.Since(start) != 10*time.Second {
			t.Fatalf("got %v after %v, want success after 10s", err, time.Since(start))
		}
		if err := m.acquire(ctx, time.Now(), 2000); !errors.Is(err, ErrRecordTooLarge) {
			t.Fatalf("larger than buffer.memory: %v", err)
		}
	})
}

// A batch compressed to a quarter or less of a large recycled buffer moves
// to a buffer of its size, and the large one goes back for the next batch;
// small batches keep theirs (a copy would cost more than it frees). Either
// way the batch holds its records.
func TestSealedBatchShrinks(t *testing.T) {
	for _, tt := range []struct {
		batchSize int
		shrinks   bool
	}{{1 << 20, true}, {16384, false}} {
		a, s, pq := testAccumulator(t, Config{BatchSize: tt.batchSize, CompressionType: "zstd"})
		n := tt.batchSize/1000 + 1
		appendN(t, a, pq, n, 1000) // zeros: compress far below a quarter
		if len(pq.batches) != 2 || pq.batches[0].sealed == nil {
			t.Fatalf("batch.size %d: %d batches, the first not sealing", tt.batchSize, len(pq.batches))
		}
		<-pq.batches[0].sealed
		b, _ := s.takeReady(pq, time.Now(), true, math.MaxInt, true)
		if b == nil || !b.full {
			t.Fatalf("batch.size %d: no full batch to take", tt.batchSize)
		}
		raw, err := a.finish(b, recordbatch.NoProducer())
		if err != nil {
			t.Fatal(err)
		}
		if shrunk := cap(raw) < a.bufCap; shrunk != tt.shrinks {
			t.Errorf("batch.size %d: %d bytes in a buffer of %d (recycled ones: %d), want shrunk=%v", tt.batchSize, len(raw), cap(raw), a.bufCap, tt.shrinks)
		}
		if tt.shrinks && len(a.bufs) < 2 {
			t.Errorf("%d buffers recycled, want the builder's and compression's", len(a.bufs))
		}
		var got recordbatch.Batch
		rd := recordbatch.NewReader(raw, recordbatch.ReadOptions{VerifyCRC: true})
		if !rd.Next(&got) || len(got.Records) != len(b.records) || len(got.Records[0].Value) != 1000 {
			t.Fatalf("batch.size %d: decoded %d records (err %v), want %d of 1000 bytes", tt.batchSize, len(got.Records), rd.Err(), len(b.records))
		}
	}
}

// While GOMAXPROCS batches are compressing, the Send that fills another
// waits for one of them and compresses its batch itself before returning,
// instead of handing it to a goroutine that would only queue behind them
// while Send's callers go on filling batches; a Send whose ctx ends while it
// waits returns, and its batch compresses on a goroutine once a
// compression finishes. Runs in a synctest bubble (snappy: its encoder
// keeps no state outside the bubble), so "waits" means durably blocked.
func TestSendCompressesWhenCompressionsBusy(t *testing.T) {
	for _, cancelled := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			a, _, pq := testAccumulator(t, Config{BatchSize: 1000, CompressionType: "snappy"})
			for len(a.sealSlots) < cap(a.sealSlots) { // every slot compressing
				a.sealSlots <- struct{}{}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			send := func() error {
				r := &kafkit.Record{Topic: "t", Value: make([]byte, 600), Timestamp: time.UnixMilli(1)}
				return appendRecord(ctx, a, &blockDeadline{at: time.Now().Add(time.Minute)}, pq, r)
			}
			if err := send(); err != nil { // opens the batch
				t.Fatal(err)
			}
			first := pq.batches[0]
			var err error
			sealedOnReturn := false
			done := make(chan struct{})
			go func() {
				defer close(done)
				err = send() // does not fit: seals the first batch
				select {
				case <-first.sealed:
					sealedOnReturn = true
				default:
				}
			}()
			synctest.Wait()
			select {
			case <-done:
				t.Fatalf("cancelled=%v: the Send that sealed a batch returned (%v) while every compression slot was busy", cancelled, err)
			default:
			}
			if first.sealed == nil {
				t.Fatal("the filled batch is not sealed")
			}
			if cancelled {
				cancel()
				synctest.Wait()
				select {
				case <-done:
				default:
					t.Fatal("Send still waits after its ctx ended")
				}
				if err != nil || sealedOnReturn {
					t.Fatalf("after ctx ended: err %v, compressed %v; want nil, not yet", err, sealedOnReturn)
				}
			}
			<-a.sealSlots // one compression finishes
			synctest.Wait()
			select {
			case <-first.sealed:
			default:
				t.Fatalf("cancelled=%v: batch not compressed once a slot freed", cancelled)
			}
			if !cancelled && (err != nil || !sealedOnReturn) {
				t.Fatalf("Send returned %v, batch compressed on return: %v; want nil, true", err, sealedOnReturn)
			}
			if first.sealErr != nil || len(pq.batches) != 2 {
				t.Fatalf("seal error %v, %d batches", first.sealErr, len(pq.batches))
			}
			if got, want := len(a.sealSlots), cap(a.sealSlots)-1; got != want {
				t.Fatalf("%d slots held after the compression, want %d", got, want)
			}
		})
	}
}
