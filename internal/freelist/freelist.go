// Package freelist recycles values between goroutines without ever
// blocking, for storage that is costly to make again (large buffers, codec
// state). Unlike a sync.Pool it keeps what it holds across garbage
// collections: the runtime empties a sync.Pool every other collection,
// which a process moving data steadily runs several times a second, so its
// values were made anew every few uses.
package freelist

// List holds up to its capacity of values: Put to a full List drops the
// value (the garbage collector takes it), Get from an empty one reports
// false.
type List[T any] chan T

// New returns a List keeping at most n values.
func New[T any](n int) List[T] { return make(List[T], n) }

// Get takes a value, if the List holds one.
func (l List[T]) Get() (v T, ok bool) {
	select {
	case v, ok = <-l:
	default:
	}
	return v, ok
}

// Put keeps v for a later Get unless the List is full.
func (l List[T]) Put(v T) {
	select {
	case l <- v:
	default:
	}
}
