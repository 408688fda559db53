package props

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

var errSentinel = errors.New("invalid config")

func TestInt(t *testing.T) {
	for _, tc := range []struct {
		value    string
		min, max int64
		want     int64
		problem  string // "" for none
	}{
		{" 42 ", 0, math.MaxInt64, 42, ""},
		{"-1", -1, 10, -1, ""},
		{"0", 1, math.MaxInt64, 0, `k: must be an integer >= 1; got "0"`},
		{"11", 0, 10, 0, `k: must be an integer in [0, 10]; got "11"`},
		{"soon", 0, 10, 0, `k: must be an integer in [0, 10]; got "soon"`},
		{"9223372036854775808", 0, math.MaxInt64, 0, `k: must be an integer >= 0; got "9223372036854775808"`},
	} {
		var p Problems
		got := p.Int("k", tc.value, tc.min, tc.max)
		err := p.Err()
		if got != tc.want || (err == nil) != (tc.problem == "") || err != nil && err.Error() != tc.problem {
			t.Errorf("Int(%q, %d, %d) = %d, %v; want %d, %q", tc.value, tc.min, tc.max, got, err, tc.want, tc.problem)
		}
	}
}

func TestMillis(t *testing.T) {
	var p Problems
	if d := p.Millis("linger.ms", "250", 0); d != 250*time.Millisecond {
		t.Errorf("250 ms: %v", d)
	}
	if d := p.Millis("max.compaction.lag.ms", "9223372036854775807", 0); d != math.MaxInt64 {
		t.Errorf("Long.MAX_VALUE ms: %v, want the largest Duration", d)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	p.Millis("request.timeout.ms", "-5", 1)
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), `request.timeout.ms: must be an integer >= 1; got "-5"`) {
		t.Errorf("negative: %v", err)
	}
}

func TestBool(t *testing.T) {
	var p Problems
	if !p.Bool("enable.idempotence", " true") || p.Bool("check.crcs", "false") {
		t.Error("true/false misread")
	}
	if p.Err() != nil {
		t.Fatal(p.Err())
	}
	p.Bool("check.crcs", "yes")
	if err := p.Err(); err == nil || err.Error() != `check.crcs: must be true or false; got "yes"` {
		t.Errorf("yes: %v", err)
	}
}

func TestProblemsWrapAndCollectAll(t *testing.T) {
	p := Problems{Wrap: errSentinel}
	if p.Err() != nil {
		t.Fatal("no problems must be a nil error")
	}
	p.Add("acks", "must be one of all, -1, 0, 1; got %q", "2")
	p.Int("batch.size", "big", 0, math.MaxInt32)
	err := p.Err()
	if !errors.Is(err, errSentinel) {
		t.Errorf("%v does not wrap the sentinel", err)
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`invalid config: acks: must be one of all, -1, 0, 1; got "2"`,
		`invalid config: batch.size: must be an integer in [0, 2147483647]; got "big"`,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("got %q, want %q", lines, want)
	}
}

func TestList(t *testing.T) {
	for value, want := range map[string][]string{
		"a:9092, b:9093": {"a:9092", "b:9093"},
		" a:1 ,, ,b:2,":  {"a:1", "b:2"},
		"":               nil,
		" , ":            nil,
	} {
		if got := List(value); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", value, got, want)
		}
	}
}

func TestUnknownKeys(t *testing.T) {
	var p Problems
	p.Wrap = errors.New("invalid")
	p.Unknown("a.key", "producer")
	p.Int("b.key", "x", 0, 1)
	p.Unknown("c.key", "producer")
	err := fmt.Errorf("loading: %w", errors.Join(p.Err(), errors.New("other")))
	if got := UnknownKeys(err); !slices.Equal(got, []string{"a.key", "c.key"}) {
		t.Errorf("UnknownKeys = %v, want [a.key c.key]", got)
	}
	if !strings.Contains(err.Error(), "a.key: unknown producer property") {
		t.Errorf("message %q", err)
	}
	if got := UnknownKeys(nil); got != nil {
		t.Errorf("UnknownKeys(nil) = %v", got)
	}
}
