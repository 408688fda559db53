package broker

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// latencyBuckets are log-linear: 8 per power of two of microseconds, so a
// quantile read from them is within 12.5% of the true value.
const latencyBuckets = 512

// latency is one API's request-time histogram, cheap enough for every
// request (two atomic adds; a quantile summary would cost microseconds).
// Counts go to the current of two windows, swapped by rotate, so the
// quantiles cover the last one to two rotation periods, as Kafka's
// exponentially decaying histograms favour recent requests; count and sum
// are cumulative, as Kafka's Count is.
type latency struct {
	windows [2][latencyBuckets]atomic.Uint64
	cur     atomic.Uint32
	count   atomic.Uint64
	sumUs   atomic.Uint64
}

func latencyBucket(us uint64) int {
	if us < 8 {
		return int(us)
	}
	n := bits.Len64(us) // ≥ 4
	return (n-3)*8 + int(us>>(n-4)&7)
}

// bucketMidMs is the middle of bucket i in milliseconds.
func bucketMidMs(i int) float64 {
	if i < 8 {
		return (float64(i) + 0.5) / 1000
	}
	n, m := i/8+3, i%8
	lower := uint64(8+m) << (n - 4)
	width := uint64(1) << (n - 4)
	return (float64(lower) + float64(width)/2) / 1000
}

func (l *latency) observe(d time.Duration) {
	us := uint64(max(d.Microseconds(), 0))
	l.windows[l.cur.Load()&1][latencyBucket(us)].Add(1)
	l.count.Add(1)
	l.sumUs.Add(us)
}

// rotate starts a new window, forgetting the one before the current.
func (l *latency) rotate() {
	next := (l.cur.Load() + 1) & 1
	for i := range l.windows[next] {
		l.windows[next][i].Store(0)
	}
	l.cur.Store(next)
}

// quantiles estimates each quantile (0..1) in milliseconds over both
// windows; NaN-free: 0 when there were no requests.
func (l *latency) quantiles(qs []float64) []float64 {
	var counts [latencyBuckets]uint64
	var total uint64
	for w := range l.windows {
		for i := range counts {
			c := l.windows[w][i].Load()
			counts[i] += c
			total += c
		}
	}
	out := make([]float64, len(qs))
	if total == 0 {
		return out
	}
	for j, q := range qs {
		rank := uint64(q * float64(total))
		var seen uint64
		for i, c := range counts {
			seen += c
			if seen > rank || seen == total {
				out[j] = bucketMidMs(i)
				break
			}
		}
	}
	return out
}
