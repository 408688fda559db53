package coordinator

import "errors"

var (
	// ErrClosed is returned by calls made after Run has returned.
	ErrClosed = errors.New("coordinator: closed")
	// ErrLoading is returned by CompleteTxnOffsets before Load has finished.
	ErrLoading = errors.New("coordinator: loading")
)
