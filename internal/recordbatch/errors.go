package recordbatch

import "errors"

var (
	// ErrCorrupt marks a batch whose bytes do not parse or whose CRC does
	// not match. Errors wrapping it name the batch's base offset.
	ErrCorrupt = errors.New("recordbatch: corrupt record batch")
	// ErrUnsupportedMagic is returned for message format v0/v1 batches,
	// which Kafka 4.0 no longer reads or writes.
	ErrUnsupportedMagic = errors.New("recordbatch: unsupported message format (magic < 2)")
	// ErrUnknownCodec is returned for a compression type outside 0..4.
	ErrUnknownCodec = errors.New("recordbatch: unknown compression codec")
	// ErrInvalidLevel is returned for a compression level outside its
	// codec's compression.<codec>.level range.
	ErrInvalidLevel = errors.New("recordbatch: invalid compression level")
)
