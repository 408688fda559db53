package interceptors_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/interceptors"
	"github.com/twmb/franz-go/pkg/kerr"
)

func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	dec := json.NewDecoder(buf)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestLogging(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level
		want  []map[string]any // the fields each line must have, in order
	}{
		{"debug", slog.LevelDebug, []map[string]any{
			{"level": "DEBUG", "msg": "record acknowledged", "topic": "t", "partition": 2.0, "offset": 17.0},
			{"level": "ERROR", "msg": "produce failed", "topic": "t", "partition": -1.0, "error": kerr.RecordListTooLarge.Error()},
		}},
		{"info hides acks", slog.LevelInfo, []map[string]any{
			{"level": "ERROR", "msg": "produce failed", "topic": "t", "partition": -1.0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := interceptors.NewLogging(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tt.level})))
			ok := &kafkit.Record{Topic: "t", Partition: 2, Offset: 17, Key: []byte("secret-key"), Value: []byte("secret-value")}
			l.OnAck(l.OnSend(context.Background(), ok), ok, nil)
			failed := &kafkit.Record{Topic: "t", Partition: kafkit.AnyPartition, Value: []byte("secret-value")}
			l.OnAck(l.OnSend(context.Background(), failed), failed, kerr.RecordListTooLarge)

			if bytes.Contains(buf.Bytes(), []byte("secret")) {
				t.Errorf("log holds record contents: %s", buf.String())
			}
			lines := logLines(t, &buf)
			if len(lines) != len(tt.want) {
				t.Fatalf("%d lines, want %d: %v", len(lines), len(tt.want), lines)
			}
			for i, want := range tt.want {
				for k, v := range want {
					if lines[i][k] != v {
						t.Errorf("line %d: %s = %v, want %v", i, k, lines[i][k], v)
					}
				}
			}
		})
	}
	// A nil logger discards without failing.
	l := interceptors.NewLogging(nil)
	r := &kafkit.Record{Topic: "t"}
	l.OnAck(l.OnSend(context.Background(), r), r, kerr.RecordListTooLarge)
}
