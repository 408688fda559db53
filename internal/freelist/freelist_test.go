package freelist

import (
	"runtime"
	"testing"
)

func TestListKeepsUpToItsCapacityAcrossGC(t *testing.T) {
	l := New[*[]byte](2)
	if _, ok := l.Get(); ok {
		t.Fatal("an empty list gave a value")
	}
	a, b, c := new([]byte), new([]byte), new([]byte)
	l.Put(a)
	l.Put(b)
	l.Put(c) // dropped: the list is full
	runtime.GC()
	runtime.GC()
	for _, want := range []*[]byte{a, b} {
		if got, ok := l.Get(); !ok || got != want {
			t.Fatalf("got %p, %v; want %p", got, ok, want)
		}
	}
	if _, ok := l.Get(); ok {
		t.Fatal("the list kept more than its capacity")
	}
}
