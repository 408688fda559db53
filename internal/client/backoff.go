package client

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// NewBackoff returns the retry policy every kafkit layer uses: exponential
// from initial, doubling up to max, with ±20% jitter (as Kafka's
// reconnect.backoff and retry.backoff do), never giving up on its own —
// callers bound retries with their ctx or their own deadline
// (delivery.timeout.ms, default.api.timeout.ms).
func NewBackoff(initial, max time.Duration) backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = initial
	b.MaxInterval = max
	b.Multiplier = 2
	b.RandomizationFactor = 0.2
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}
