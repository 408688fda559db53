package producer

import (
	"testing"
	"time"
)

func TestClockNow(t *testing.T) {
	tests := []struct {
		name   string
		anchor *time.Time // nil: a fresh clock
	}{
		{"fresh", nil},
		{"recent anchor", ptr(time.Now())},
		{"stale anchor", ptr(time.Now().Add(-time.Hour))},
		{"anchor in the future", ptr(time.Now().Add(time.Hour))},
		{"anchor without monotonic reading", ptr(time.Now().Add(-time.Hour).Round(0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c clock
			if tt.anchor != nil {
				c.anchor.Store(tt.anchor)
			}
			for range 1000 {
				before := time.Now()
				got := c.now()
				after := time.Now()
				// Compare wall clocks (Round(0) drops the monotonic reading):
				// record timestamps are wall-clock milliseconds.
				if got.Round(0).Before(before.Round(0).Add(-time.Millisecond)) || got.Round(0).After(after.Round(0).Add(time.Millisecond)) {
					t.Fatalf("now() = %v, not within a millisecond of [%v, %v]", got, before, after)
				}
				if got.Before(before) || got.After(after) {
					t.Fatalf("now() = %v: monotonic reading outside [%v, %v]", got, before, after)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
