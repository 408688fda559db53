package interceptors_test

import (
	"slices"
	"testing"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/interceptors"
)

func TestHeaderCarrier(t *testing.T) {
	hs := []kafkit.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("3")}}
	c := (*interceptors.HeaderCarrier)(&hs)
	if got := c.Get("a"); got != "3" {
		t.Errorf("Get(a) = %q, want the last one, 3", got)
	}
	if got := c.Get("missing"); got != "" {
		t.Errorf("Get(missing) = %q", got)
	}
	if got := c.Keys(); !slices.Equal(got, []string{"a", "b", "a"}) {
		t.Errorf("Keys() = %v", got)
	}
	c.Set("a", "4")
	c.Set("c", "5")
	want := []kafkit.Header{{Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("4")}, {Key: "c", Value: []byte("5")}}
	if !slices.EqualFunc(hs, want, func(x, y kafkit.Header) bool { return x.Key == y.Key && string(x.Value) == string(y.Value) }) {
		t.Errorf("after Set: %v, want %v", hs, want)
	}
}
