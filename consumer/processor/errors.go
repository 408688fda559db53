package processor

import "errors"

var (
	// ErrInvalidConfig wraps every problem Config.Validate finds.
	ErrInvalidConfig = errors.New("processor: invalid config")
	// ErrRunning is returned by Run when the Runner already ran: a Runner
	// runs once (its consumer left the group when Run returned).
	ErrRunning = errors.New("processor: Run called twice")
	// ErrNotDeadLetter is returned by ParseDeadLetter for a record without
	// the dead-letter headers.
	ErrNotDeadLetter = errors.New("processor: not a dead-letter record")
)

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying: a handler returning it (or an
// error wrapping it) sends its record straight to the dead-letter topic.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, came from
// Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
