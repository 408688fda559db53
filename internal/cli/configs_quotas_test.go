package cli

import (
	"strings"
	"testing"

	"github.com/kafkit/kafkit/broker"
)

// TestQuotaConfigTool runs kafka-configs.sh for users, clients and ips
// against our broker: set, describe with Kafka's wording, delete.
func TestQuotaConfigTool(t *testing.T) {
	b := broker.NewTest(t).Addr()
	r := toolOK(t, "kafka-configs.sh", "", "--bootstrap-server", b, "--alter", "--entity-type", "users", "--entity-name", "alice",
		"--add-config", "producer_byte_rate=1048576,consumer_byte_rate=2048")
	if r.out != "Completed updating config for user alice.\n" {
		t.Errorf("alter printed %q", r.out)
	}
	toolOK(t, "kafka-configs.sh", "", "--bootstrap-server", b, "--alter", "--user", "alice", "--client", "app", "--add-config", "request_percentage=12.5")
	r = toolOK(t, "kafka-configs.sh", "", "--bootstrap-server", b, "--alter", "--entity-type", "clients", "--entity-default", "--add-config", "producer_byte_rate=10000000")
	if r.out != "Completed updating default config for clients in the cluster.\n" {
		t.Errorf("alter default printed %q", r.out)
	}
	toolOK(t, "kafka-configs.sh", "", "--bootstrap-server", b, "--alter", "--ip", "127.0.0.1", "--add-config", "connection_creation_rate=10")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--entity-type", "users", "--entity-name", "alice"}, "Quota configs for user-principal 'alice' are consumer_byte_rate=2048.0, producer_byte_rate=1048576.0\n"},
		{[]string{"--user", "alice", "--client", "app"}, "Quota configs for user-principal 'alice', client-id 'app' are request_percentage=12.5\n"},
		{[]string{"--entity-type", "clients", "--entity-default"}, "Quota configs for the default client-id are producer_byte_rate=1.0E7\n"},
		{[]string{"--entity-type", "ips"}, "Quota configs for ip '127.0.0.1' are connection_creation_rate=10.0\n"},
	} {
		r := toolOK(t, "kafka-configs.sh", "", append([]string{"--bootstrap-server", b, "--describe"}, tc.args...)...)
		if r.out != tc.want {
			t.Errorf("describe %v printed %q, want %q", tc.args, r.out, tc.want)
		}
	}

	toolOK(t, "kafka-configs.sh", "", "--bootstrap-server", b, "--alter", "--entity-type", "users", "--entity-name", "alice", "--delete-config", "consumer_byte_rate")
	r = toolOK(t, "kafka-configs.sh", "", "--bootstrap-server", b, "--describe", "--entity-type", "users", "--entity-name", "alice")
	if r.out != "Quota configs for user-principal 'alice' are producer_byte_rate=1048576.0\n" {
		t.Errorf("after deleting consumer_byte_rate: %q", r.out)
	}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--entity-type", "users", "--entity-name", "alice", "--delete-config", "consumer_byte_rate"}, "Invalid config(s): consumer_byte_rate"},
		{[]string{"--entity-type", "clients", "--entity-name", "x", "--add-config", "retention.ms=1"}, "Only quota configs can be added for 'clients' using --bootstrap-server. Unexpected config names: retention.ms"},
		{[]string{"--entity-type", "users", "--entity-name", "x", "--add-config", "producer_byte_rate=fast"}, "Cannot parse quota configuration value for producer_byte_rate: fast"},
		{[]string{"--entity-type", "users", "--entity-name", "x", "--add-config", "producer_byte_rate=1.5"}, "producer_byte_rate cannot be a fractional value."},
	} {
		r := tool(t, "kafka-configs.sh", "", append([]string{"--bootstrap-server", b, "--alter"}, tc.args...)...)
		if r.code != 1 || !strings.Contains(r.err, tc.err) {
			t.Errorf("alter %v: exit %d, %q, want %q", tc.args, r.code, r.err, tc.err)
		}
	}
}
