package coordinator

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

var (
	// ErrClosed is returned by calls made after Run has returned.
	ErrClosed = errors.New("coordinator: closed")
)

// appendFailed is the error a request gets when its write to the
// coordinator's internal topic failed: NOT_COORDINATOR when the broker no
// longer leads the partition (the Store says so with kerr.NotCoordinator;
// Kafka maps NOT_LEADER_OR_FOLLOWER to it), COORDINATOR_NOT_AVAILABLE
// otherwise; the client finds the coordinator again and retries either way.
func appendFailed(err error) *kerr.Error {
	if errors.Is(err, kerr.NotCoordinator) {
		return kerr.NotCoordinator
	}
	return kerr.CoordinatorNotAvailable
}
