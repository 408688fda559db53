package consumer

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"zero value plus servers", Config{BootstrapServers: []string{"k:9092"}}, nil},
		{"no servers", Config{}, []string{"bootstrap.servers"}},
		{"everything wrong", Config{
			BootstrapServers:            []string{"k:9092"},
			SessionTimeout:              time.Second,
			HeartbeatInterval:           2 * time.Second,
			AutoOffsetReset:             "smallest",
			IsolationLevel:              "dirty",
			PartitionAssignmentStrategy: []string{"sticky"},
			GroupInstanceID:             "i1",
			FetchMaxBytes:               -1,
			MaxPollInterval:             -time.Second,
		}, []string{"heartbeat.interval.ms", "auto.offset.reset", "isolation.level", "partition.assignment.strategy", "group.instance.id", "fetch.max.bytes", "max.poll.interval.ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %s: %v", w, err)
				}
			}
		})
	}
}

func TestConfigFromProperties(t *testing.T) {
	cfg, err := ConfigFromProperties(map[string]string{
		"bootstrap.servers":             "a:9092, b:9092",
		"group.id":                      "g",
		"enable.auto.commit":            "false",
		"auto.offset.reset":             "earliest",
		"session.timeout.ms":            "10000",
		"max.poll.records":              "42",
		"isolation.level":               "read_committed",
		"partition.assignment.strategy": "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
		"fetch.max.wait.ms":             "250",
		"security.protocol":             "SASL_SSL",
		"sasl.mechanism":                "SCRAM-SHA-512",
		"sasl.jaas.config":              `org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p\"q";`,
		"key.deserializer":              "org.apache.kafka.common.serialization.StringDeserializer",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.BootstrapServers) != 2 || cfg.GroupID != "g" || !cfg.DisableAutoCommit || cfg.AutoOffsetReset != "earliest" ||
		cfg.SessionTimeout != 10*time.Second || cfg.MaxPollRecords != 42 || cfg.IsolationLevel != ReadCommitted ||
		len(cfg.PartitionAssignmentStrategy) != 1 || cfg.PartitionAssignmentStrategy[0] != AssignorCooperativeSticky ||
		cfg.FetchMaxWait != 250*time.Millisecond || cfg.TLS == nil || cfg.SASL == nil || cfg.SASL.Mechanism != "SCRAM-SHA-512" || cfg.SASL.User != "u" || cfg.SASL.Password != `p"q` {
		t.Fatalf("parsed %+v", cfg)
	}

	_, err = ConfigFromProperties(map[string]string{"bootstrap.servers": "a:1", "fetch.min.bytes": "lots", "no.such.key": "1"})
	if err == nil || !strings.Contains(err.Error(), "fetch.min.bytes") || !strings.Contains(err.Error(), "no.such.key") {
		t.Fatalf("bad properties: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	d := Config{}.withDefaults()
	if d.SessionTimeout != 45*time.Second || d.HeartbeatInterval != 3*time.Second || d.MaxPollInterval != 5*time.Minute ||
		d.MaxPollRecords != 500 || d.AutoOffsetReset != OffsetResetLatest || d.FetchMaxBytes != 52428800 ||
		d.MaxPartitionFetchBytes != 1048576 || d.FetchMaxWait != 500*time.Millisecond || d.IsolationLevel != ReadUncommitted ||
		d.AutoCommitInterval != 5*time.Second || len(d.PartitionAssignmentStrategy) != 2 {
		t.Fatalf("defaults: %+v", d)
	}
}
