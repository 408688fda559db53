package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

type result struct {
	out, err string
	code     int
}

// run drives the CLI as a user would, against addr, with stdin.
func run(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if addr != "" {
		args = append([]string{"--bootstrap-server", addr}, args...)
	}
	code := Run(ctx, args, IO{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return result{out.String(), errb.String(), code}
}

// ok runs and fails the test unless the command succeeded.
func ok(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	r := run(t, addr, stdin, args...)
	if r.code != 0 {
		t.Fatalf("kafkit %s: exit %d: %s", strings.Join(args, " "), r.code, r.err)
	}
	return r
}

// masks hide what varies between runs: ids, ports, member ids.
var masks = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`TopicId: [A-Za-z0-9_-]+`), "TopicId: <ID>"},
	{regexp.MustCompile(`Cluster ID: \S+`), "Cluster ID: <ID>"},
	{regexp.MustCompile(`127\.0\.0\.1  +\d+`), "127.0.0.1  <PORT>"},
	{regexp.MustCompile(`kafkit-console-consumer-[0-9a-f-]{8,}`), "<MEMBER-ID>"},
}

// golden compares got, masked, with testdata/name.golden (-update rewrites
// it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	for _, m := range masks {
		got = m.re.ReplaceAllString(got, m.with)
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got ---\n%s--- want ---\n%s", name, path, got, want)
	}
}

func TestTopicsCommands(t *testing.T) {
	addr := broker.NewTest(t).Addr()
	r := ok(t, addr, "", "topics", "create", "--topic", "orders", "--partitions", "3", "--replication-factor", "1", "--config", "retention.ms=3600000", "--config", "max.message.bytes=2000")
	if r.out != "Created topic orders.\n" {
		t.Errorf("create printed %q", r.out)
	}
	ok(t, addr, "", "topics", "create", "--topic", "audit")
	r = run(t, addr, "", "topics", "create", "--topic", "orders", "--partitions", "1")
	if r.code == 0 || !strings.Contains(r.err, "TOPIC_ALREADY_EXISTS") {
		t.Errorf("creating twice: exit %d, %q", r.code, r.err)
	}
	ok(t, addr, "", "topics", "create", "--topic", "orders", "--if-not-exists")

	if r = ok(t, addr, "", "topics", "list"); r.out != "audit\norders\n" {
		t.Errorf("list printed %q", r.out)
	}
	golden(t, "topics_describe", ok(t, addr, "", "topics", "describe", "--topic", "orders").out)

	ok(t, addr, "", "topics", "alter", "--topic", "orders", "--partitions", "5")
	golden(t, "topics_describe_altered", ok(t, addr, "", "topics", "describe", "--topic", "orders").out)

	var js []struct {
		Name              string
		ReplicationFactor int
		Partitions        []struct{ Partition, Leader int32 }
		Configs           map[string]string
	}
	if err := json.Unmarshal([]byte(ok(t, addr, "", "topics", "describe", "--topic", "orders", "--output", "json").out), &js); err != nil {
		t.Fatal(err)
	}
	if len(js) != 1 || js[0].Name != "orders" || len(js[0].Partitions) != 5 || js[0].Configs["retention.ms"] != "3600000" {
		t.Errorf("json describe: %+v", js)
	}

	if r = ok(t, addr, "", "topics", "delete", "--topic", "orders"); r.out != "Deleted topic orders.\n" {
		t.Errorf("delete printed %q", r.out)
	}
	ok(t, addr, "", "topics", "delete", "--topic", "orders", "--if-exists")
	if r = ok(t, addr, "", "topics", "list"); r.out != "audit\n" {
		t.Errorf("list after delete printed %q", r.out)
	}
	for _, args := range [][]string{
		{"topics", "describe", "--topic", "orders"},
		{"topics", "delete", "--topic", "orders"},
		{"topics", "alter", "--topic", "orders", "--partitions", "9"},
	} {
		r = run(t, addr, "", args...)
		if r.code != 1 || r.err != "Error: topic 'orders' does not exist\n" || r.out != "" {
			t.Errorf("%v on a deleted topic: exit %d, stderr %q", args, r.code, r.err)
		}
	}
}

func TestProduceConsume(t *testing.T) {
	addr := broker.NewTest(t).Addr()
	ok(t, addr, "", "topics", "create", "--topic", "lines", "--partitions", "3")
	var in strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&in, "line-%d\n", i)
	}
	r := ok(t, addr, in.String(), "produce", "--topic", "lines", "--progress", "--progress-every", "250", "--compression", "lz4", "--acks", "1")
	if want := "250 messages sent\n500 messages sent\n750 messages sent\n1000 messages sent\nProduced a total of 1000 messages\n"; r.err != want {
		t.Errorf("progress on stderr %q, want %q", r.err, want)
	}
	r = ok(t, addr, "", "consume", "--topic", "lines", "--from-beginning", "--max-messages", "1000", "--timeout-ms", "10000")
	got := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	seen := make(map[string]bool)
	for _, l := range got {
		seen[l] = true
	}
	if len(got) != 1000 || len(seen) != 1000 || !seen["line-0"] || !seen["line-999"] {
		t.Errorf("consumed %d lines (%d distinct)", len(got), len(seen))
	}
	if r.err != "Processed a total of 1000 messages\n" {
		t.Errorf("stderr %q", r.err)
	}

	// Keys, headers, one partition, a start offset, and --timeout-ms ending an idle read.
	ok(t, addr, "", "topics", "create", "--topic", "kv", "--partitions", "2")
	ok(t, addr, "a:1\nb:2\n", "produce", "--topic", "kv", "--parse-key", "--key-separator", ":", "--header", "h=x", "--partition", "1")
	r = ok(t, addr, "", "consume", "--topic", "kv", "--partition", "1", "--offset", "earliest", "--format", `%t/%p/%o %k=%v [%h]`, "--max-messages", "2", "--timeout-ms", "10000")
	if r.out != "kv/1/0 a=1 [h=x]\nkv/1/1 b=2 [h=x]\n" || r.err != "Processed a total of 2 messages\n" {
		t.Errorf("formatted consume: %q %q", r.out, r.err)
	}
	r = ok(t, addr, "", "consume", "--topic", "kv", "--partition", "1", "--offset", "1", "--max-messages", "1")
	if r.out != "2\n" {
		t.Errorf("from offset 1: %q", r.out)
	}
	r = ok(t, addr, "", "consume", "--topic", "kv", "--partition", "0", "--from-beginning", "--timeout-ms", "300")
	if r.out != "" || r.err != "Processed a total of 0 messages\n" {
		t.Errorf("--timeout-ms on an empty partition: %q %q", r.out, r.err)
	}
}

func TestGroupsCommands(t *testing.T) {
	addr := broker.NewTest(t).Addr()
	ok(t, addr, "", "topics", "create", "--topic", "events", "--partitions", "1")
	var in strings.Builder
	for i := range 10 {
		fmt.Fprintf(&in, "e%d\n", i)
	}
	ok(t, addr, in.String(), "produce", "--topic", "events")
	if r := ok(t, addr, "", "consume", "--topic", "events", "--group", "billing", "--from-beginning", "--max-messages", "4"); r.out != "e0\ne1\ne2\ne3\n" {
		t.Fatalf("consumed %q", r.out)
	}
	if r := ok(t, addr, "", "groups", "list"); r.out != "billing\n" {
		t.Errorf("groups list: %q", r.out)
	}
	golden(t, "groups_describe_lag6", ok(t, addr, "", "groups", "describe", "--group", "billing").out)

	// Dry run changes nothing; --execute does.
	golden(t, "groups_reset_dry_run", ok(t, addr, "", "groups", "reset-offsets", "--group", "billing", "--topic", "events", "--to-earliest").out)
	golden(t, "groups_describe_lag6", ok(t, addr, "", "groups", "describe", "--group", "billing").out)
	ok(t, addr, "", "groups", "reset-offsets", "--group", "billing", "--all-topics", "--shift-by", "-2", "--execute")
	golden(t, "groups_describe_lag8", ok(t, addr, "", "groups", "describe", "--group", "billing").out)

	// The group reads the rest from its committed offset 2.
	r := ok(t, addr, "", "consume", "--topic", "events", "--group", "billing", "--max-messages", "8")
	if r.out != "e2\ne3\ne4\ne5\ne6\ne7\ne8\ne9\n" || r.err != "Processed a total of 8 messages\n" {
		t.Errorf("consumed %q %q", r.out, r.err)
	}
	golden(t, "groups_describe_lag0", ok(t, addr, "", "groups", "describe", "--group", "billing").out)

	if r := ok(t, addr, "", "groups", "delete", "--group", "billing"); r.out != "Deletion of requested consumer groups ('billing') was successful.\n" {
		t.Errorf("delete: %q", r.out)
	}
	if r := run(t, addr, "", "groups", "describe", "--group", "billing"); r.code != 1 || r.err != "Error: consumer group 'billing' does not exist\n" {
		t.Errorf("describe a deleted group: %d %q", r.code, r.err)
	}
}

func TestConfigsAndCluster(t *testing.T) {
	addr := broker.NewTest(t).Addr()
	ok(t, addr, "", "topics", "create", "--topic", "c")
	r := ok(t, addr, "", "configs", "alter", "--entity-type", "topics", "--entity-name", "c", "--add-config", "retention.ms=1000,segment.bytes=[1048576]")
	if r.out != "Completed updating config for topic c.\n" {
		t.Errorf("alter: %q", r.out)
	}
	golden(t, "configs_describe", ok(t, addr, "", "configs", "describe", "--entity-type", "topics", "--entity-name", "c").out)
	ok(t, addr, "", "configs", "alter", "--entity-type", "topics", "--entity-name", "c", "--delete-config", "retention.ms")
	golden(t, "configs_describe_deleted", ok(t, addr, "", "configs", "describe", "--entity-type", "topics", "--entity-name", "c").out)
	r = ok(t, addr, "", "configs", "describe", "--entity-type", "brokers", "--entity-name", "0", "--all")
	if !strings.HasPrefix(r.out, "All configs for broker 0 are:\n") || !strings.Contains(r.out, "  log.retention.hours=") {
		t.Errorf("broker configs: %q", r.out)
	}
	golden(t, "cluster_describe", ok(t, addr, "", "cluster", "describe").out)
}

func TestKeyValues(t *testing.T) {
	for _, tc := range []struct {
		in    []string
		lists bool
		want  map[string]string
		err   bool
	}{
		{[]string{"a=1", "b=x=y"}, false, map[string]string{"a": "1", "b": "x=y"}, false},
		{[]string{"cleanup.policy=compact,delete"}, false, map[string]string{"cleanup.policy": "compact,delete"}, false},
		{[]string{"a=1,b=[x,y],c=3"}, true, map[string]string{"a": "1", "b": "x,y", "c": "3"}, false},
		{[]string{"a=1,oops"}, true, nil, true},
		{[]string{"=1"}, false, nil, true},
	} {
		got, err := keyValues("--config", tc.in, tc.lists)
		if (err != nil) != tc.err || (!tc.err && fmt.Sprint(got) != fmt.Sprint(tc.want)) {
			t.Errorf("keyValues(%q, %v) = %v, %v; want %v (error %v)", tc.in, tc.lists, got, err, tc.want, tc.err)
		}
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	addr := broker.NewTest(t).Addr()
	for _, tc := range []struct {
		name string
		addr string
		args []string
		want string // a substring of the one stderr line
	}{
		{"unknown flag", addr, []string{"topics", "create", "--topic", "x", "--nope"}, "Error: unknown flag: --nope (see 'kafkit topics create --help')"},
		{"bad flag value", addr, []string{"topics", "create", "--topic", "x", "--partitions", "many"}, `invalid argument "many" for "--partitions"`},
		{"missing flag", addr, []string{"topics", "create"}, `required flag(s) "topic" not set`},
		{"unknown command", addr, []string{"topicz"}, `unknown command "topicz"`},
		{"bad output", addr, []string{"topics", "list", "-o", "xml"}, "--output must be table or json"},
		{"no reset target", addr, []string{"groups", "reset-offsets", "--group", "g", "--all-topics"}, "give exactly one of --to-earliest"},
		{"unknown topic", addr, []string{"topics", "describe", "--topic", "nope"}, "Error: topic 'nope' does not exist"},
		{"produce to unknown topic", addr, []string{"produce", "--topic", "nope"}, "Error: topic 'nope' does not exist"},
		{"consume unknown topic", addr, []string{"consume", "--topic", "nope"}, "Error: topic 'nope' does not exist"},
		{"unreachable broker", "127.0.0.1:1", []string{"topics", "list"}, "cannot connect to a Kafka broker at 127.0.0.1:1 (connection refused); check the host and port (--bootstrap-server or KAFKA_BOOTSTRAP) and that the broker runs, e.g. `go run ./cmd/broker`"},
		{"bad command config", addr, []string{"topics", "list", "--command-config", "/does/not/exist"}, "--command-config: open /does/not/exist"},
	} {
		r := run(t, tc.addr, "", tc.args...)
		if r.code != 1 || r.out != "" || strings.Count(r.err, "\n") != 1 || !strings.Contains(r.err, tc.want) || !strings.HasPrefix(r.err, "Error: ") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want one line containing %q", tc.name, r.code, r.out, r.err, tc.want)
		}
	}
}

func TestBootstrapFromEnvAndCommandConfig(t *testing.T) {
	addr := broker.NewTest(t).Addr()
	var out, errb bytes.Buffer
	code := Run(t.Context(), []string{"cluster", "describe"}, IO{Out: &out, Err: &errb, Getenv: func(k string) string {
		if k == "KAFKA_BOOTSTRAP" {
			return addr
		}
		return ""
	}})
	if code != 0 || !strings.Contains(out.String(), "Cluster ID: ") {
		t.Errorf("with KAFKA_BOOTSTRAP: %d %q %q", code, out.String(), errb.String())
	}

	cfg := filepath.Join(t.TempDir(), "client.properties")
	os.WriteFile(cfg, []byte("# Kafka tools style\nsecurity.protocol=PLAINTEXT\nclient.id = ops\n"), 0o644)
	ok(t, addr, "", "topics", "list", "--command-config", cfg)
	os.WriteFile(cfg, []byte("security.protocol=CARRIER_PIGEON\n"), 0o644)
	if r := run(t, addr, "", "topics", "list", "--command-config", cfg); r.code != 1 || !strings.Contains(r.err, "security.protocol") {
		t.Errorf("bad security.protocol: %d %q", r.code, r.err)
	}
}

func TestGroupsDescribeActiveMember(t *testing.T) {
	addr := broker.NewTest(t).Addr()
	ok(t, addr, "", "topics", "create", "--topic", "jobs", "--partitions", "2")
	ok(t, addr, "a\nb\nc\n", "produce", "--topic", "jobs", "--partition", "1")
	ctx := t.Context()
	c, err := consumer.New(ctx, consumer.Config{BootstrapServers: []string{addr}, GroupID: "workers", ClientID: "worker-1", DisableAutoCommit: true, AutoOffsetReset: consumer.OffsetResetEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.Subscribe("jobs"); err != nil {
		t.Fatal(err)
	}
	pollCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for len(c.Assignment()) < 2 {
		if _, err := c.Poll(pollCtx); err != nil {
			t.Fatalf("waiting for the assignment: %v", err)
		}
	}
	if err := c.CommitOffsets(ctx, map[kafkit.TopicPartition]int64{{Topic: "jobs", Partition: 1}: 1}); err != nil {
		t.Fatal(err)
	}
	adm, err := admin.New(ctx, admin.Config{BootstrapServers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ds, err := adm.DescribeGroups(ctx, "workers")
	if err != nil || len(ds[0].Members) != 1 {
		t.Fatalf("describe: %v %+v", err, ds)
	}
	m := ds[0].Members[0]
	mask := strings.NewReplacer(m.MemberID, "<MEMBER-ID>", m.Host, "<HOST>")
	golden(t, "groups_describe_active", mask.Replace(ok(t, addr, "", "groups", "describe", "--group", "workers").out))
	golden(t, "groups_describe_members", mask.Replace(ok(t, addr, "", "groups", "describe", "--group", "workers", "--members").out))

	r := run(t, addr, "", "groups", "reset-offsets", "--group", "workers", "--all-topics", "--to-earliest", "--execute")
	if r.code != 1 || !strings.Contains(r.err, "inactive") || strings.Count(r.err, "\n") != 1 {
		t.Errorf("reset of an active group: %d %q", r.code, r.err)
	}
	if r := run(t, addr, "", "groups", "delete", "--group", "workers"); r.code != 1 || !strings.Contains(r.err, "NON_EMPTY_GROUP") {
		t.Errorf("delete of an active group: %d %q", r.code, r.err)
	}
}
