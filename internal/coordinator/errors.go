package coordinator

import "errors"

// ErrClosed is returned by calls made after Run has returned.
var ErrClosed = errors.New("coordinator: closed")
