// Package props reads Kafka configuration properties (the key=value maps
// of Java clients' .properties files) into typed values, and collects the
// problems found on the way, each naming its key, so that a loader or a
// Validate reports every problem at once.
package props

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Problems collects configuration problems, each naming the Kafka key it
// concerns. The zero value is ready to use.
type Problems struct {
	// Wrap, when non-nil, is wrapped by every problem, so that errors.Is
	// finds the caller's sentinel (ErrInvalidConfig).
	Wrap error
	errs []error
}

// Add records a problem with key; format and args describe it.
func (p *Problems) Add(key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.Wrap != nil {
		p.errs = append(p.errs, fmt.Errorf("%w: %s: %s", p.Wrap, key, msg))
		return
	}
	p.errs = append(p.errs, fmt.Errorf("%s: %s", key, msg))
}

// Unknown records that key is not a property of what (a "producer", an
// "admin client"): Kafka's Java clients only warn of such a key, so a
// caller reading another program's file may drop the keys UnknownKeys
// finds and load again.
func (p *Problems) Unknown(key, what string) {
	p.Add(key, "unknown %s property", what)
	p.errs[len(p.errs)-1] = unknownKey{p.errs[len(p.errs)-1], key}
}

type unknownKey struct {
	error
	key string
}

func (u unknownKey) Unwrap() error { return u.error }

// UnknownKeys are the keys err (a loader's error) reports as unknown.
func UnknownKeys(err error) []string {
	var keys []string
	switch e := err.(type) {
	case unknownKey:
		keys = append(keys, e.key)
	case interface{ Unwrap() []error }:
		for _, e := range e.Unwrap() {
			keys = append(keys, UnknownKeys(e)...)
		}
	case interface{ Unwrap() error }:
		keys = UnknownKeys(e.Unwrap())
	}
	return keys
}

// Err returns every problem joined (errors.Join), or nil.
func (p *Problems) Err() error { return errors.Join(p.errs...) }

// Int parses value as an integer in [min, max]. Surrounding space is
// ignored, as Java's ConfigDef trims numbers. A malformed or out-of-range
// value is a problem naming key and value; the result is then 0.
func (p *Problems) Int(key, value string, min, max int64) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
	switch {
	case err == nil && n >= min && n <= max:
		return n
	case max == math.MaxInt64:
		p.Add(key, "must be an integer >= %d; got %q", min, value)
	default:
		p.Add(key, "must be an integer in [%d, %d]; got %q", min, max, value)
	}
	return 0
}

// Millis parses a *.ms value of at least min milliseconds. Values too
// large for a time.Duration (Java configs write Long.MAX_VALUE for
// "forever") become the largest Duration.
func (p *Problems) Millis(key, value string, min int64) time.Duration {
	n := p.Int(key, value, min, math.MaxInt64)
	if n > math.MaxInt64/int64(time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(n) * time.Millisecond
}

// Bool parses a boolean (true, false, and strconv.ParseBool's other
// spellings; surrounding space ignored).
func (p *Problems) Bool(key, value string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(value))
	if err != nil {
		p.Add(key, "must be true or false; got %q", value)
	}
	return b
}

// List splits a Kafka list value (bootstrap.servers,
// partition.assignment.strategy) at commas, trimming space and dropping
// empty items.
func List(value string) []string {
	var out []string
	for s := range strings.SplitSeq(value, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
