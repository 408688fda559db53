package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// tsBatch builds a batch whose records carry the timestamps ts (the first
// is the batch's firstTimestamp, the others deltas from it), compressed
// with codec, with the client's base offset base.
func tsBatch(t testing.TB, codec recordbatch.Codec, base int64, ts ...int64) []byte {
	t.Helper()
	var recs []byte
	for i, v := range ts {
		r := kmsg.Record{TimestampDelta64: v - ts[0], OffsetDelta: int32(i), Key: []byte{'k'}, Value: []byte(fmt.Sprint(i))}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	if codec != recordbatch.None {
		var err error
		if recs, err = recordbatch.Compress(codec, nil, recs); err != nil {
			t.Fatal(err)
		}
	}
	b := kmsg.RecordBatch{FirstOffset: base, PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(codec),
		LastOffsetDelta: int32(len(ts) - 1), FirstTimestamp: ts[0], MaxTimestamp: slices.Max(ts),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(ts)), Records: recs}
	b.Length = int32(49 + len(recs))
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[offCRC:], batchCRC(out))
	return out
}

// KIP-937: under CreateTime a batch with a record further from the
// broker's clock than message.timestamp.before.max.ms or after.max.ms is
// refused whole with INVALID_TIMESTAMP, naming every such record by its
// index in the batch with LogValidator's message; the bounds themselves
// are accepted. Compressed batches are checked as they are walked.
func TestAppendTimestampBounds(t *testing.T) {
	const now = int64(1_700_000_000_000)
	const hour, minute = int64(3_600_000), int64(60_000)
	lo, hi := now-hour, now+minute
	cfg := Config{TimestampBeforeMaxMs: time.Hour, TimestampAfterMaxMs: time.Minute}
	msg := func(ts, off int64) string {
		return fmt.Sprintf("Timestamp %d of message with offset %d is out of range. The timestamp should be within [%d, %d]", ts, off, lo, hi)
	}
	cases := []struct {
		name string
		base int64
		ts   []int64
		want []RecordError // nil: accepted
	}{
		{"at the bounds", 0, []int64{lo, now, hi}, nil},
		{"one too old", 0, []int64{now, now, lo - 1, now}, []RecordError{{2, msg(lo-1, 2)}}},
		{"first too old", 0, []int64{lo - 1, now}, []RecordError{{0, msg(lo-1, 0)}}},
		{"two too new", 0, []int64{now, hi + 1, now, math.MaxInt64 / 2}, []RecordError{{1, msg(hi+1, 1)}, {3, msg(math.MaxInt64/2, 3)}}},
		{"old and new", 0, []int64{0, hi + 1}, []RecordError{{0, msg(0, 0)}, {1, msg(hi+1, 1)}}},
		// Kafka's message names record.offset(): the client's base offset
		// plus the delta, before the broker assigns offsets.
		{"client base offset", 5, []int64{now, now, hi + 1}, []RecordError{{2, msg(hi+1, 7)}}},
		// NO_TIMESTAMP is not checked.
		{"no timestamp", 0, []int64{-1, -1}, nil},
	}
	for _, codec := range []recordbatch.Codec{recordbatch.None, recordbatch.Gzip, recordbatch.Snappy, recordbatch.LZ4, recordbatch.Zstd} {
		for _, tc := range cases {
			t.Run(codec.String()+"/"+tc.name, func(t *testing.T) {
				l := mustOpen(t, NewMemFS(), "/d/t-0", cfg)
				defer l.Close()
				mustAppend(t, l, tsBatch(t, codec, 0, now), now) // 0
				_, err := l.Append(tsBatch(t, codec, tc.base, tc.ts...), msTime(now), 7)
				if tc.want == nil {
					if err != nil {
						t.Fatalf("Append: %v", err)
					}
					if l.EndOffset() != 1+int64(len(tc.ts)) {
						t.Fatalf("end offset %d", l.EndOffset())
					}
					return
				}
				var te *InvalidTimestampError
				if !errors.As(err, &te) || !errors.Is(err, ErrInvalidTimestamp) {
					t.Fatalf("Append: %v, want an InvalidTimestampError", err)
				}
				if err.Error() != "One or more records have been rejected due to invalid timestamp" {
					t.Fatalf("message %q", err)
				}
				if !slices.Equal(te.Records, tc.want) {
					t.Fatalf("records %+v\nwant %+v", te.Records, tc.want)
				}
				if l.EndOffset() != 1 || len(readAll(t, l, 0)) != 1 {
					t.Fatalf("a refused batch was written: end offset %d", l.EndOffset())
				}
			})
		}
	}
}

// Under LogAppendTime Kafka checks no timestamp; the defaults are Kafka
// 4's (before: none, after: one hour), and Kafka's 0 (time.Nanosecond)
// accepts the broker's clock alone. SetConfig changes the bounds for the
// next Append.
func TestAppendTimestampConfig(t *testing.T) {
	const now = int64(1_700_000_000_000)
	hour := time.Hour.Milliseconds()
	check := func(t *testing.T, cfg Config, ts int64, ok bool) {
		t.Helper()
		l := mustOpen(t, NewMemFS(), "/d/t-0", cfg)
		defer l.Close()
		_, err := l.Append(tsBatch(t, recordbatch.None, 0, ts), msTime(now), 0)
		if ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidTimestamp)) {
			t.Fatalf("cfg %+v, timestamp now%+d: Append: %v, want accepted %v", cfg, ts-now, err, ok)
		}
	}
	t.Run("LogAppendTime", func(t *testing.T) {
		strict := Config{LogAppendTime: true, TimestampBeforeMaxMs: time.Nanosecond, TimestampAfterMaxMs: time.Nanosecond}
		check(t, strict, 0, true)
		check(t, strict, now+100*hour, true)
	})
	t.Run("defaults", func(t *testing.T) {
		check(t, Config{}, 0, true)
		// Kafka's Long.MAX_VALUE: now - ts must not overflow.
		check(t, Config{}, now-math.MaxInt64, true)
		check(t, Config{}, now-math.MaxInt64-1, false)
		check(t, Config{}, now+hour, true)
		check(t, Config{}, now+hour+1, false)
	})
	t.Run("zero", func(t *testing.T) {
		exact := Config{TimestampBeforeMaxMs: time.Nanosecond, TimestampAfterMaxMs: time.Nanosecond}
		check(t, exact, now, true)
		check(t, exact, now-1, false)
		check(t, exact, now+1, false)
	})
	t.Run("SetConfig", func(t *testing.T) {
		l := mustOpen(t, NewMemFS(), "/d/t-0", Config{TimestampBeforeMaxMs: time.Hour})
		defer l.Close()
		old := tsBatch(t, recordbatch.None, 0, now-2*hour)
		if _, err := l.Append(slices.Clone(old), msTime(now), 0); !errors.Is(err, ErrInvalidTimestamp) {
			t.Fatalf("Append: %v", err)
		}
		if err := l.SetConfig(Config{TimestampBeforeMaxMs: 3 * time.Hour}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(old, msTime(now), 0); err != nil {
			t.Fatalf("Append after SetConfig: %v", err)
		}
	})
	t.Run("negative", func(t *testing.T) {
		if err := (Config{TimestampBeforeMaxMs: -1}).Validate(); err == nil {
			t.Fatal("negative message.timestamp.before.max.ms accepted")
		}
		if err := (Config{TimestampAfterMaxMs: -1}).Validate(); err == nil {
			t.Fatal("negative message.timestamp.after.max.ms accepted")
		}
	})
}

// The check adds no allocation to a batch within bounds: the bounds are
// computed once per Append and each record costs one comparison.
func TestValidateTimestampsAllocateNothing(t *testing.T) {
	now := int64(1_700_000_000_000)
	batch := tsBatch(t, recordbatch.None, 0, now, now+1, now-1, now)
	tb := timestampBoundsAt(now, time.Hour, time.Hour)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := validateIncoming(batch, tb); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations a batch", n)
	}
}

// A batch with more records out of range than maxNamedRecords is refused
// naming the first maxNamedRecords of them: a compressed batch could
// otherwise make the broker hold a message for each of millions.
func TestInvalidTimestampNamesBoundedRecords(t *testing.T) {
	ts := make([]int64, maxNamedRecords+5)
	for i := range ts {
		ts[i] = int64(i) // 1970: far before the bounds below
	}
	tb := timestampBoundsAt(1_700_000_000_000, time.Hour, time.Hour)
	_, err := validateIncoming(tsBatch(t, recordbatch.Zstd, 0, ts...), tb)
	var te *InvalidTimestampError
	if !errors.As(err, &te) || len(te.Records) != maxNamedRecords || te.Records[maxNamedRecords-1].BatchIndex != maxNamedRecords-1 {
		t.Fatalf("err %v", err)
	}
}
