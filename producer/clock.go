package producer

import (
	"sync/atomic"
	"time"
)

// clockResync is how long a clock anchor serves before the clock reads the
// wall time again, so that a step of the system clock (NTP, an operator)
// shows in record timestamps within this delay.
const clockResync = 10 * time.Millisecond

// clock tells the time for record timestamps. time.Now reads two clocks
// (wall and monotonic) and was about a third of Send's cost; clock reads
// only the monotonic one and adds the elapsed time to a recent wall-clock
// anchor, which is exact to well under a millisecond (Kafka's CreateTime
// unit): the two clocks drift apart only by NTP's slewing, a few µs per
// anchor. Safe for concurrent use.
type clock struct {
	anchor atomic.Pointer[clockAnchor] // nil until first used
}

// clockAnchor is one time.Now reading: its monotonic part measures the
// elapsed time, its wall part in Unix nanoseconds is what elapsed is added
// to.
type clockAnchor struct {
	mono     time.Time
	unixNano int64
}

// nowMilli returns the current Unix time in milliseconds.
func (c *clock) nowMilli() int64 {
	if a := c.anchor.Load(); a != nil {
		if d := time.Since(a.mono); d >= 0 && d < clockResync {
			return (a.unixNano + int64(d)) / int64(time.Millisecond)
		}
	}
	t := time.Now()
	c.anchor.Store(&clockAnchor{mono: t, unixNano: t.UnixNano()})
	return t.UnixMilli()
}

// blockDeadline is when a Send stops waiting for metadata or buffer.memory
// (max.block.ms). It is computed when Send first needs it: most Sends never
// wait, and reading the clock is a noticeable share of Send's cost.
type blockDeadline struct {
	maxBlock time.Duration
	at       time.Time // zero until first asked for
}

func (d *blockDeadline) time() time.Time {
	if d.at.IsZero() {
		d.at = time.Now().Add(d.maxBlock)
	}
	return d.at
}
