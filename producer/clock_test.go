package producer

import (
	"testing"
	"time"
)

func TestClockNowMilli(t *testing.T) {
	anchor := func(t time.Time) *clockAnchor { return &clockAnchor{mono: t, unixNano: t.UnixNano()} }
	tests := []struct {
		name   string
		anchor *clockAnchor // nil: a fresh clock
	}{
		{"fresh", nil},
		{"recent anchor", anchor(time.Now())},
		{"anchor half a resync old", anchor(time.Now().Add(-clockResync / 2))},
		{"stale anchor", anchor(time.Now().Add(-time.Hour))},
		{"anchor in the future", anchor(time.Now().Add(time.Hour))},
		{"anchor without monotonic reading", anchor(time.Now().Add(-time.Hour).Round(0))},
		{"wall clock stepped since the anchor", &clockAnchor{mono: time.Now().Add(-clockResync), unixNano: time.Now().Add(-time.Hour).UnixNano()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c clock
			if tt.anchor != nil {
				c.anchor.Store(tt.anchor)
			}
			for range 1000 {
				before := time.Now().UnixMilli()
				got := c.nowMilli()
				after := time.Now().UnixMilli()
				if got < before || got > after {
					t.Fatalf("nowMilli() = %d, not within [%d, %d]", got, before, after)
				}
			}
		})
	}
}

func TestBlockDeadline(t *testing.T) {
	d := blockDeadline{maxBlock: time.Minute}
	before := time.Now()
	first := d.time()
	if first.Before(before.Add(time.Minute)) || first.After(time.Now().Add(time.Minute)) {
		t.Fatalf("deadline %v is not max.block.ms after the first call (%v)", first, before)
	}
	if again := d.time(); !again.Equal(first) {
		t.Fatalf("second call moved the deadline from %v to %v", first, again)
	}
}
