package processor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kafkit/kafkit"
)

// The headers a dead-letter record carries besides the original ones. The
// names and encodings are Spring Kafka's (DeadLetterPublishingRecoverer), so
// Java tooling that reads those understands ours: partition is a 4-byte and
// offset and timestamp 8-byte big-endian integer, the rest UTF-8 text.
const (
	HeaderOriginalTopic         = "kafka_dlt-original-topic"
	HeaderOriginalPartition     = "kafka_dlt-original-partition"
	HeaderOriginalOffset        = "kafka_dlt-original-offset"
	HeaderOriginalTimestamp     = "kafka_dlt-original-timestamp" // milliseconds since the epoch
	HeaderOriginalTimestampType = "kafka_dlt-original-timestamp-type"
	HeaderOriginalGroup         = "kafka_dlt-original-consumer-group"
	HeaderErrorMessage          = "kafka_dlt-exception-message"
	HeaderErrorType             = "kafka_dlt-exception-fqcn" // the Go type of the error, e.g. *fs.PathError
)

// DeadLetter is what a dead-letter record's headers say about the record
// that failed.
type DeadLetter struct {
	Topic         string
	Partition     int32
	Offset        int64
	Timestamp     time.Time
	TimestampType kafkit.TimestampType
	Group         string
	Error         string // the handler's error message
	ErrorType     string
}

// deadLetterRecord is the record to produce for r, which failed with err:
// the same key, value, timestamp and headers, plus the dead-letter headers.
// The partition is chosen by the producer from the key.
func deadLetterRecord(topic string, r *kafkit.Record, group string, err error) *kafkit.Record {
	tsType := "CreateTime"
	if r.TimestampType == kafkit.LogAppendTime {
		tsType = "LogAppendTime"
	}
	hs := slices.Grow(slices.Clone(r.Headers), 8)
	hs = append(hs,
		kafkit.Header{Key: HeaderOriginalTopic, Value: []byte(r.Topic)},
		kafkit.Header{Key: HeaderOriginalPartition, Value: binary.BigEndian.AppendUint32(nil, uint32(r.Partition))},
		kafkit.Header{Key: HeaderOriginalOffset, Value: binary.BigEndian.AppendUint64(nil, uint64(r.Offset))},
		kafkit.Header{Key: HeaderOriginalTimestamp, Value: binary.BigEndian.AppendUint64(nil, uint64(r.Timestamp.UnixMilli()))},
		kafkit.Header{Key: HeaderOriginalTimestampType, Value: []byte(tsType)},
		kafkit.Header{Key: HeaderOriginalGroup, Value: []byte(group)},
		kafkit.Header{Key: HeaderErrorMessage, Value: []byte(err.Error())},
		kafkit.Header{Key: HeaderErrorType, Value: []byte(errorType(err))},
	)
	return &kafkit.Record{
		Topic:     topic,
		Partition: kafkit.AnyPartition,
		Key:       r.Key,
		Value:     r.Value,
		Headers:   hs,
		Timestamp: r.Timestamp,
	}
}

// errorType names err's type, looking through Permanent.
func errorType(err error) string {
	var p permanentError
	if errors.As(err, &p) {
		err = p.err
	}
	return fmt.Sprintf("%T", err)
}

// ParseDeadLetter reads the dead-letter headers of r, a record from a
// dead-letter topic. It returns ErrNotDeadLetter when the topic, partition
// or offset header is missing or malformed.
func ParseDeadLetter(r *kafkit.Record) (DeadLetter, error) {
	last := func(key string) ([]byte, bool) {
		for i := len(r.Headers) - 1; i >= 0; i-- {
			if r.Headers[i].Key == key {
				return r.Headers[i].Value, true
			}
		}
		return nil, false
	}
	var d DeadLetter
	topic, ok1 := last(HeaderOriginalTopic)
	part, ok2 := last(HeaderOriginalPartition)
	off, ok3 := last(HeaderOriginalOffset)
	if !ok1 || !ok2 || !ok3 || len(part) != 4 || len(off) != 8 {
		return d, fmt.Errorf("%w: %s[%d]@%d", ErrNotDeadLetter, r.Topic, r.Partition, r.Offset)
	}
	d.Topic = string(topic)
	d.Partition = int32(binary.BigEndian.Uint32(part))
	d.Offset = int64(binary.BigEndian.Uint64(off))
	if ts, ok := last(HeaderOriginalTimestamp); ok && len(ts) == 8 {
		d.Timestamp = time.UnixMilli(int64(binary.BigEndian.Uint64(ts)))
	}
	if tt, _ := last(HeaderOriginalTimestampType); string(tt) == "LogAppendTime" {
		d.TimestampType = kafkit.LogAppendTime
	}
	g, _ := last(HeaderOriginalGroup)
	msg, _ := last(HeaderErrorMessage)
	typ, _ := last(HeaderErrorType)
	d.Group, d.Error, d.ErrorType = string(g), string(msg), string(typ)
	return d, nil
}
