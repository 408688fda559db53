package admin

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

var (
	// ErrInvalidConfig wraps every Config and ConfigFromProperties problem.
	ErrInvalidConfig = errors.New("kafkit admin: invalid config")
	// ErrGroupActive refuses to change a group's offsets while it has
	// members, as kafka-consumer-groups --reset-offsets does: they would
	// overwrite the new offsets with their own commits.
	ErrGroupActive = errors.New("kafkit admin: group has active members")
	// ErrInvalidResetSpec means a ResetSpec sets no target, or more than one.
	ErrInvalidResetSpec = errors.New("kafkit admin: invalid offset reset")
)

// Error is a Kafka error code a broker answered for one resource, with the
// message the broker sent (Kafka's description of the code when it sent
// none). errors.Is(err, kerr.X) matches the code.
type Error struct {
	Op       string // what was asked: "create topic", "describe group", ...
	Resource string // the topic, group, "topic-partition" or broker it concerns
	Code     *kerr.Error
	Message  string // the broker's error message, if it sent one
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code.Description
	}
	return fmt.Sprintf("%s %s: %s: %s", e.Op, e.Resource, e.Code.Message, msg)
}

func (e *Error) Unwrap() error { return e.Code }

// kafkaErr turns an error code and optional message from a response into an
// *Error, or nil for code 0.
func kafkaErr(op, resource string, code int16, msg *string) error {
	ke := kerr.TypedErrorForCode(code)
	if ke == nil {
		return nil
	}
	e := &Error{Op: op, Resource: resource, Code: ke}
	if msg != nil {
		e.Message = *msg
	}
	return e
}
