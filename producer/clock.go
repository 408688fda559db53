package producer

import (
	"sync/atomic"
	"time"
)

// clockResync is how long a clock anchor serves before the clock reads the
// wall time again, so that a step of the system clock (NTP, an operator)
// shows in record timestamps within this delay.
const clockResync = 10 * time.Millisecond

// clock tells the time for Send. time.Now reads two clocks (wall and
// monotonic) and was about a third of Send's cost; clock reads only the
// monotonic one and adds the elapsed time to a recent wall-clock anchor,
// which is exact to well under a millisecond (Kafka's CreateTime unit): the
// two clocks drift apart only by NTP's slewing, a few µs per anchor.
// Safe for concurrent use.
type clock struct {
	anchor atomic.Pointer[time.Time] // the latest time.Now, with its monotonic reading; nil until first used
}

// now returns the current time, with a monotonic reading.
func (c *clock) now() time.Time {
	if a := c.anchor.Load(); a != nil {
		if d := time.Since(*a); d >= 0 && d < clockResync {
			return a.Add(d)
		}
	}
	t := time.Now()
	c.anchor.Store(&t)
	return t
}
