package broker

import (
	"math"
	"testing"
	"time"
)

func TestLatencyQuantiles(t *testing.T) {
	var l latency
	// 90 fast requests of 100µs and 10 slow ones of 50ms.
	for range 90 {
		l.observe(100 * time.Microsecond)
	}
	for range 10 {
		l.observe(50 * time.Millisecond)
	}
	got := l.quantiles([]float64{0.5, 0.95, 0.999})
	for i, want := range []float64{0.1, 50, 50} {
		if math.Abs(got[i]-want)/want > 0.125 {
			t.Errorf("quantile %d = %vms, want %vms within 12.5%%", i, got[i], want)
		}
	}
	if l.count.Load() != 100 || l.sumUs.Load() != 90*100+10*50000 {
		t.Errorf("count %d sum %dµs", l.count.Load(), l.sumUs.Load())
	}
	// Two rotations forget the old window's requests, not the count.
	l.rotate()
	l.observe(2 * time.Millisecond)
	l.rotate()
	l.observe(2 * time.Millisecond)
	if q := l.quantiles([]float64{0.99}); math.Abs(q[0]-2)/2 > 0.125 {
		t.Errorf("after rotating: p99 %vms, want 2ms", q[0])
	}
	if l.count.Load() != 102 {
		t.Errorf("count %d after rotating, want 102", l.count.Load())
	}
	for us := uint64(0); us < 1<<40; us = us*3 + 1 {
		i := latencyBucket(us)
		if mid := bucketMidMs(i) * 1000; math.Abs(mid-float64(us)) > float64(us)/8+1 {
			t.Errorf("%dµs lands in bucket %d around %vµs", us, i, mid)
		}
	}
}
