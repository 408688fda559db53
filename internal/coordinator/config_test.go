package coordinator

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // keys the error must name; none: valid
	}{
		{"zero value is Kafka's defaults", Config{}, nil},
		{"explicit zero minimum and delay", Config{MinSessionTimeout: -1, InitialRebalanceDelay: -1}, nil},
		{"min above max", Config{MinSessionTimeout: time.Minute, MaxSessionTimeout: time.Second}, []string{"group.min.session.timeout.ms"}},
		{"every problem at once", Config{NumPartitions: -1, MaxGroupSize: -1, OffsetsRetention: -1}, []string{"offsets.topic.num.partitions", "group.max.size", "offsets.retention.minutes"}},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if len(tt.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		for _, key := range tt.want {
			if !strings.Contains(err.Error(), key) {
				t.Errorf("%s: %v does not name %s", tt.name, err, key)
			}
		}
	}
	if d := (Config{MinSessionTimeout: -1}).withDefaults(); d.MinSessionTimeout != 0 || d.InitialRebalanceDelay != 3*time.Second {
		t.Errorf("defaults: min session %v, delay %v", d.MinSessionTimeout, d.InitialRebalanceDelay)
	}
}
