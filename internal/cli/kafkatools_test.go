package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/internal/testutil/syncbuf"
	"github.com/twmb/franz-go/pkg/kfake"
)

// tool runs kafkit as a user's shell runs a link named like a Kafka tool
// (argv[0] is the link's path), with stdin.
func tool(t *testing.T, name, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	argv := append([]string{filepath.Join("/opt/kafka/bin", name)}, args...)
	code := Main(ctx, argv, IO{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return result{out.String(), errb.String(), code}
}

func toolOK(t *testing.T, name, stdin string, args ...string) result {
	t.Helper()
	r := tool(t, name, stdin, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: exit %d\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r
}

func TestToolName(t *testing.T) {
	for argv0, want := range map[string]string{
		"/usr/bin/kafka-topics.sh":        "kafka-topics",
		"kafka-topics":                    "kafka-topics",
		`C:\kafka\kafka-topics.bat`:       "", // filepath.Base is the OS's: not a Windows path here
		"kafka-console-consumer.sh":       "kafka-console-consumer",
		"/x/kafkit":                       "",
		"kafka-topics.sh.bak":             "",
		"/x/kafka-producer-perf-test.sh":  "kafka-producer-perf-test",
		"kafka-broker-api-versions.sh":    "kafka-broker-api-versions",
		"./bin/kafka-consumer-groups.cmd": "kafka-consumer-groups",
	} {
		if got := toolName(argv0); got != want {
			t.Errorf("toolName(%q) = %q, want %q", argv0, got, want)
		}
	}
}

func TestRewriteActions(t *testing.T) {
	root := newRoot(&globals{})
	for _, c := range []struct {
		in, want string // "" want: an error
	}{
		{"topics --create --topic t", "topics create --topic t"},
		{"--bootstrap-server b:1 topics --topic t --describe", "--bootstrap-server b:1 topics describe --topic t"},
		{"-o json topics --list", "-o json topics list"},
		{"topics create --topic t", "topics create --topic t"},
		{"groups --describe --group g --members", "groups describe --group g --members"},
		{"groups --reset-offsets --group g --all-topics --to-earliest --execute", "groups reset-offsets --group g --all-topics --to-earliest --execute"},
		{"configs --entity-type topics --entity-name t --alter --add-config a=1", "configs alter --entity-type topics --entity-name t --add-config a=1"},
		{"produce --topic t", "produce --topic t"},
		{"topics --help", "topics --help"},
		{"topics --create --delete --topic t", ""},
		{"topics --topic t", ""},
		{"groups --create --group g", ""},
	} {
		got, err := rewriteActions(root, strings.Fields(c.in))
		switch {
		case c.want == "" && err == nil:
			t.Errorf("%q: rewritten to %q, want an error", c.in, got)
		case c.want != "" && (err != nil || strings.Join(got, " ") != c.want):
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestKafkaQuickstart runs the command sequence of Kafka's quickstart and
// tutorials through the tools' names, checking what Kafka's tools print.
func TestKafkaQuickstart(t *testing.T) {
	b := broker.NewTest(t).Addr()
	r := toolOK(t, "kafka-topics.sh", "", "--bootstrap-server", b, "--create", "--topic", "quickstart-events", "--replication-factor", "1", "--partitions", "3")
	if r.out != "Created topic quickstart-events.\n" {
		t.Errorf("create printed %q", r.out)
	}
	r = toolOK(t, "kafka-topics.sh", "", "--bootstrap-server", b, "--create", "--topic", "my_topic.v1")
	if !strings.HasPrefix(r.out, "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') could collide.") {
		t.Errorf("create of a name with . and _ printed %q", r.out)
	}
	if r = toolOK(t, "kafka-topics.sh", "", "--bootstrap-server", b, "--list"); r.out != "my_topic.v1\nquickstart-events\n" {
		t.Errorf("list printed %q", r.out)
	}
	r = toolOK(t, "kafka-topics.sh", "", "--describe", "--topic", "quickstart-events", "--bootstrap-server", b)
	if !regexp.MustCompile(`^Topic: quickstart-events\tTopicId: \S+\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: \n(\tTopic: quickstart-events\tPartition: \d\tLeader: 0\tReplicas: 0\tIsr: 0\n){3}$`).MatchString(r.out) {
		t.Errorf("describe printed %q", r.out)
	}
	if r = toolOK(t, "kafka-topics", "", "--bootstrap-server", b, "--describe", "--under-replicated-partitions"); r.out != "" {
		t.Errorf("no partition is under-replicated on one broker, but describe printed %q", r.out)
	}
	if r = toolOK(t, "kafka-topics", "", "--bootstrap-server", b, "--describe", "--topic", "quick.*", "--unavailable-partitions"); r.out != "" {
		t.Errorf("every partition has a leader, but describe printed %q", r.out)
	}

	// The console producer of old tutorials: --broker-list.
	toolOK(t, "kafka-console-producer.sh", "This is my first event\nThis is my second event\n",
		"--broker-list", b, "--topic", "quickstart-events", "--property", "parse.key=false")
	toolOK(t, "kafka-console-producer.sh", "k1:v1\nk2:v2\n",
		"--bootstrap-server", b, "--topic", "quickstart-events", "--property", "parse.key=true", "--property", "key.separator=:")

	r = toolOK(t, "kafka-console-consumer.sh", "", "--bootstrap-server", b, "--topic", "quickstart-events", "--from-beginning", "--max-messages", "4")
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	slices.Sort(lines)
	if want := []string{"This is my first event", "This is my second event", "v1", "v2"}; !slices.Equal(lines, want) {
		t.Errorf("consumer printed %q, want %q in some order", lines, want)
	}
	if r.err != "Processed a total of 4 messages\n" {
		t.Errorf("consumer's stderr %q", r.err)
	}
	r = toolOK(t, "kafka-console-consumer.sh", "", "--bootstrap-server", b, "--topic", "quickstart-events", "--from-beginning",
		"--consumer-property", "group.id=tutorial", "--timeout-ms", "3000", "--property", "print.key=true", "--property", "key.separator=|")
	lines = strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	slices.Sort(lines)
	if want := []string{"k1|v1", "k2|v2", "null|This is my first event", "null|This is my second event"}; !slices.Equal(lines, want) {
		t.Errorf("group consumer printed %q, want %q in some order", lines, want)
	}

	r = toolOK(t, "kafka-consumer-groups.sh", "", "--bootstrap-server", b, "--list")
	if r.out != "tutorial\n" {
		t.Errorf("groups --list printed %q", r.out)
	}
	r = toolOK(t, "kafka-consumer-groups.sh", "", "--bootstrap-server", b, "--describe", "--group", "tutorial")
	if !strings.Contains(r.out, "Consumer group 'tutorial' has no active members.") ||
		!regexp.MustCompile(`GROUP +TOPIC +PARTITION +CURRENT-OFFSET +LOG-END-OFFSET +LAG +CONSUMER-ID +HOST +CLIENT-ID\n`).MatchString(r.out) ||
		len(regexp.MustCompile(`(?m)^tutorial +quickstart-events +\d +\d+ +\d+ +0 +- +- +-$`).FindAllString(r.out, -1)) != 3 {
		t.Errorf("groups --describe printed %q", r.out)
	}

	if r = toolOK(t, "kafka-topics.sh", "", "--bootstrap-server", b, "--delete", "--topic", "quickstart-events"); r.out != "" {
		t.Errorf("delete printed %q (kafka-topics.sh prints nothing)", r.out)
	}
	r = tool(t, "kafka-topics.sh", "", "--bootstrap-server", b, "--describe", "--topic", "quickstart-events")
	if r.code != 1 || r.out != "Error while executing topic command : Topic 'quickstart-events' does not exist as expected\n" {
		t.Errorf("describe of a deleted topic: exit %d, stdout %q", r.code, r.out)
	}
}

func TestOldFlags(t *testing.T) {
	r := tool(t, "kafka-topics.sh", "", "--zookeeper", "zk:2181", "--list")
	if r.code != 1 || !strings.Contains(r.out, "--zookeeper is not supported") || !strings.Contains(r.out, "--bootstrap-server") {
		t.Errorf("--zookeeper: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
	r = run(t, "", "", "topics", "list", "--zookeeper", "zk:2181")
	if r.code != 1 || !strings.Contains(r.err, "--zookeeper is not supported") {
		t.Errorf("kafkit --zookeeper: exit %d, stderr %q", r.code, r.err)
	}
	b := broker.NewTest(t).Addr()
	toolOK(t, "kafka-topics.sh", "", "--bootstrap-server", b, "--create", "--topic", "t")
	// --broker-list stands for --bootstrap-server wherever it is given.
	if r := ok(t, "", "", "--broker-list", b, "topics", "list"); r.out != "t\n" {
		t.Errorf("--broker-list: %q", r.out)
	}
	// Action flags work with kafkit's own command names too.
	if r := ok(t, b, "", "topics", "--list"); r.out != "t\n" {
		t.Errorf("topics --list: %q", r.out)
	}
	if r := run(t, b, "", "topics", "--list", "--describe"); r.code != 1 || !strings.Contains(r.err, "exactly one action") {
		t.Errorf("two actions: exit %d, %q", r.code, r.err)
	}
}

func TestAdminTools(t *testing.T) {
	b := broker.NewTest(t).Addr()
	toolOK(t, "kafka-topics.sh", "", "--bootstrap-server", b, "--create", "--topic", "t", "--partitions", "2")
	toolOK(t, "kafka-console-producer.sh", "a\nb\nc\nd\n", "--bootstrap-server", b, "--topic", "t", "--producer-property", "partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner")

	r := toolOK(t, "kafka-configs.sh", "", "--bootstrap-server", b, "--alter", "--entity-type", "topics", "--entity-name", "t", "--add-config", "retention.ms=86400000,cleanup.policy=[delete,compact]")
	if r.out != "Completed updating config for topic t.\n" {
		t.Errorf("configs --alter printed %q", r.out)
	}
	r = toolOK(t, "kafka-configs.sh", "", "--bootstrap-server", b, "--describe", "--topic", "t")
	if !strings.HasPrefix(r.out, "Dynamic configs for topic t are:\n") || !strings.Contains(r.out, "  retention.ms=86400000 ") ||
		!strings.Contains(r.out, "  cleanup.policy=delete,compact ") {
		t.Errorf("configs --describe printed %q", r.out)
	}

	r = toolOK(t, "kafka-get-offsets.sh", "", "--bootstrap-server", b, "--topic", "t")
	if r.out != "t:0:2\nt:1:2\n" {
		t.Errorf("get-offsets printed %q", r.out)
	}
	plan := filepath.Join(t.TempDir(), "offsets.json")
	if err := os.WriteFile(plan, []byte(`{"partitions":[{"topic":"t","partition":1,"offset":1}],"version":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r = toolOK(t, "kafka-delete-records.sh", "", "--bootstrap-server", b, "--offset-json-file", plan)
	if r.out != "Executing records delete operation\nRecords delete operation completed:\npartition: t-1\tlow_watermark: 1\n" {
		t.Errorf("delete-records printed %q", r.out)
	}
	if r = toolOK(t, "kafka-get-offsets.sh", "", "--bootstrap-server", b, "--topic-partitions", "t:1", "--time", "earliest"); r.out != "t:1:1\n" {
		t.Errorf("get-offsets --time earliest printed %q", r.out)
	}
	if r = tool(t, "kafka-get-offsets.sh", "", "--bootstrap-server", b, "--time", "yesterday"); r.code != 1 || !strings.Contains(r.err, "malformed time argument") {
		t.Errorf("get-offsets --time yesterday: exit %d, %q", r.code, r.err)
	}

	r = toolOK(t, "kafka-broker-api-versions.sh", "", "--bootstrap-server", b)
	if !regexp.MustCompile(`^127\.0\.0\.1:\d+ \(id: 0 rack: null\) -> \(\n\tProduce\(0\): \d+ to \d+ \[usable: \d+\],\n\tFetch\(1\): `).MatchString(r.out) ||
		!strings.HasSuffix(r.out, "\n)\n") || !strings.Contains(r.out, "\tApiVersions(18): 0 to ") {
		t.Errorf("broker-api-versions printed %q", r.out)
	}

	toolOK(t, "kafka-console-consumer.sh", "", "--bootstrap-server", b, "--topic", "t", "--group", "g", "--from-beginning", "--max-messages", "3")
	r = toolOK(t, "kafka-consumer-groups.sh", "", "--bootstrap-server", b, "--describe", "--group", "g", "--state")
	if !regexp.MustCompile(`GROUP +COORDINATOR \(ID\) +ASSIGNMENT-STRATEGY +STATE +#MEMBERS\ng +127\.0\.0\.1:\d+ \(0\) +- +Empty +0\n`).MatchString(r.out) {
		t.Errorf("groups --describe --state printed %q", r.out)
	}
	r = toolOK(t, "kafka-consumer-groups.sh", "", "--bootstrap-server", b, "--delete-offsets", "--group", "g", "--topic", "t:0")
	if !strings.Contains(r.out, "TOPIC  PARTITION  STATUS\nt      0          Successful\n") {
		t.Errorf("groups --delete-offsets printed %q", r.out)
	}
	r = toolOK(t, "kafka-consumer-groups.sh", "", "--bootstrap-server", b, "--delete", "--all-groups")
	if r.out != "Deletion of requested consumer groups ('g') was successful.\n" {
		t.Errorf("groups --delete --all-groups printed %q", r.out)
	}
}

func TestPerfTools(t *testing.T) {
	b := broker.NewTest(t).Addr()
	toolOK(t, "kafka-topics.sh", "", "--bootstrap-server", b, "--create", "--topic", "perf", "--partitions", "2")
	r := toolOK(t, "kafka-producer-perf-test.sh", "", "--topic", "perf", "--num-records", "2000", "--record-size", "100",
		"--throughput", "-1", "--producer-props", "bootstrap.servers="+b, "acks=all", "linger.ms=1")
	if !regexp.MustCompile(`(?m)^2000 records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg latency, [\d.]+ ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, \d+ ms 99\.9th\.$`).MatchString(r.out) {
		t.Errorf("producer perf test printed %q", r.out)
	}
	// --throughput 1000 holds 2000 records to about 2 s.
	start := time.Now()
	toolOK(t, "kafka-producer-perf-test", "", "--bootstrap-server", b, "--topic", "perf", "--num-records", "2000", "--payload-monotonic", "--throughput", "1000")
	if d := time.Since(start); d < 1900*time.Millisecond {
		t.Errorf("2000 records at --throughput 1000 took %v, want about 2 s", d)
	}

	r = toolOK(t, "kafka-consumer-perf-test.sh", "", "--bootstrap-server", b, "--topic", "perf", "--messages", "4000", "--timeout", "20000")
	if !regexp.MustCompile(`^start\.time, end\.time, data\.consumed\.in\.MB, MB\.sec, data\.consumed\.in\.nMsg, nMsg\.sec, rebalance\.time\.ms, fetch\.time\.ms, fetch\.MB\.sec, fetch\.nMsg\.sec\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}, [\d.]+, [\d.]+, 4000, [\d.]+, \d+, \d+, [\d.]+, [\d.]+\n$`).MatchString(r.out) {
		t.Errorf("consumer perf test printed %q", r.out)
	}
}

// TestToolLinks builds the kafkit binary, links the tools with `kafkit
// tools link` and runs one through its link, as a runbook would.
func TestToolLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the kafkit binary")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build kafkit with")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "kafkit")
	if out, err := exec.Command(gobin, "build", "-o", bin, "github.com/kafkit/kafkit/cmd/kafkit").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	links := filepath.Join(dir, "bin")
	if out, err := exec.Command(bin, "tools", "link", links).CombinedOutput(); err != nil || !strings.Contains(string(out), "export PATH="+links+":$PATH") {
		t.Fatalf("tools link: %v\n%s", err, out)
	}
	for _, name := range kafkaTools {
		for _, n := range []string{name + ".sh", name} {
			if target, err := os.Readlink(filepath.Join(links, n)); err != nil || target != bin {
				t.Errorf("%s: link to %q, %v", n, target, err)
			}
		}
	}
	// Linking again replaces the links.
	if out, err := exec.Command(bin, "tools", "link", links).CombinedOutput(); err != nil {
		t.Fatalf("tools link again: %v\n%s", err, out)
	}
	b := broker.NewTest(t).Addr()
	cmd := exec.Command(filepath.Join(links, "kafka-topics.sh"), "--bootstrap-server", b, "--create", "--topic", "linked", "--partitions", "2")
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "Created topic linked.\n" {
		t.Errorf("kafka-topics.sh through its link: %v, %q", err, out)
	}
	out, err := exec.Command(filepath.Join(links, "kafka-topics"), "--bootstrap-server", b, "--list").CombinedOutput()
	if err != nil || string(out) != "linked\n" {
		t.Errorf("kafka-topics --list through its link: %v, %q", err, out)
	}
}

// TestACLTools adds, lists and removes ACLs through kafka-acls.sh against
// kfake, which keeps ACLs, and checks our broker's answer without an
// authorizer.
func TestACLTools(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	// kfake stores ACLs; so does our broker with its authorizer on
	// (ANONYMOUS a super user, as the tool connects unauthenticated).
	withAuthorizer := broker.NewTest(t, broker.WithAuthorizer("User:ANONYMOUS")).Addr()
	for _, b := range []string{fake.ListenAddrs()[0], withAuthorizer} {
		r := toolOK(t, "kafka-acls.sh", "", "--bootstrap-server", b, "--add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Write", "--topic", "orders")
		want := "Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`: \n" +
			" \t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)\n\t(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW) \n\n"
		if r.out != want {
			t.Errorf("add printed %q, want %q", r.out, want)
		}
		toolOK(t, "kafka-acls.sh", "", "--bootstrap-server", b, "--add", "--deny-principal", "User:mallory", "--consumer", "--topic", "pay", "--group", "billing", "--resource-pattern-type", "prefixed")
		r = toolOK(t, "kafka-acls.sh", "", "--bootstrap-server", b, "--list")
		for _, s := range []string{
			"Current ACLs for resource `ResourcePattern(resourceType=GROUP, name=billing, patternType=PREFIXED)`: \n \t(principal=User:mallory, host=*, operation=READ, permissionType=DENY) \n\n",
			"(principal=User:mallory, host=*, operation=DESCRIBE, permissionType=DENY)",
			"Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`",
		} {
			if !strings.Contains(r.out, s) {
				t.Errorf("list printed %q, want it to hold %q", r.out, s)
			}
		}
		if r = toolOK(t, "kafka-acls.sh", "", "--bootstrap-server", b, "--list", "--topic", "orders", "--principal", "User:bob"); strings.Contains(r.out, "alice") {
			t.Errorf("list --principal User:bob printed alice's ACLs: %q", r.out)
		}
		// Without --force it asks; "n" keeps the ACLs.
		r = toolOK(t, "kafka-acls.sh", "n\n", "--bootstrap-server", b, "--remove", "--topic", "orders")
		if !strings.Contains(r.out, "Are you sure you want to delete all ACLs for resource filter `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`? (y/n)") {
			t.Errorf("remove asked %q", r.out)
		}
		toolOK(t, "kafka-acls.sh", "", "--bootstrap-server", b, "--remove", "--force", "--allow-principal", "User:alice", "--operation", "Write", "--topic", "orders")
		r = toolOK(t, "kafka-acls.sh", "", "--bootstrap-server", b, "--list", "--topic", "orders")
		if !strings.Contains(r.out, "operation=READ") || strings.Contains(r.out, "operation=WRITE") {
			t.Errorf("after removing WRITE, list printed %q", r.out)
		}
		if r := tool(t, "kafka-acls.sh", "", "--bootstrap-server", b, "--add", "--topic", "orders"); r.code != 1 || !strings.Contains(r.err, "--allow-principal, --deny-principal") {
			t.Errorf("add without principals: exit %d, %q", r.code, r.err)
		}
	}

	ours := broker.NewTest(t).Addr()
	if r := tool(t, "kafka-acls.sh", "", "--bootstrap-server", ours, "--list"); r.code != 1 || !strings.Contains(r.err, "SECURITY_DISABLED") {
		t.Errorf("our broker without an authorizer: exit %d, %q", r.code, r.err)
	}
}

func TestPartitionTools(t *testing.T) {
	b := broker.NewTest(t).Addr()
	toolOK(t, "kafka-topics.sh", "", "--bootstrap-server", b, "--create", "--topic", "p", "--partitions", "2")
	r := toolOK(t, "kafka-leader-election.sh", "", "--bootstrap-server", b, "--election-type", "preferred", "--topic", "p", "--partition", "1")
	if r.out != "Valid replica already elected for partitions p-1\n" {
		t.Errorf("leader election printed %q", r.out)
	}
	r = tool(t, "kafka-leader-election.sh", "", "--bootstrap-server", b, "--election-type", "PREFERRED", "--topic", "p", "--partition", "7")
	if r.code != 1 || !strings.HasPrefix(r.out, "Error completing leader election (PREFERRED) for partition: p-7: ") ||
		!strings.Contains(r.err, "1 replica(s) could not be elected") {
		t.Errorf("election of a missing partition: exit %d, %q, %q", r.code, r.out, r.err)
	}

	dir := t.TempDir()
	write := func(name, s string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	move := write("move.json", `{"topics":[{"topic":"p"}],"version":1}`)
	r = toolOK(t, "kafka-reassign-partitions.sh", "", "--bootstrap-server", b, "--generate", "--topics-to-move-json-file", move, "--broker-list", "0")
	same := `{"version":1,"partitions":[{"topic":"p","partition":0,"replicas":[0],"log_dirs":["any"]},{"topic":"p","partition":1,"replicas":[0],"log_dirs":["any"]}]}`
	if want := "Current partition replica assignment\n" + same + "\n\nProposed partition reassignment configuration\n" + same + "\n"; r.out != want {
		t.Errorf("--generate printed %q, want %q", r.out, want)
	}
	plan := write("plan.json", `{"version":1,"partitions":[{"topic":"p","partition":1,"replicas":[0]}]}`)
	r = toolOK(t, "kafka-reassign-partitions.sh", "", "--bootstrap-server", b, "--execute", "--reassignment-json-file", plan)
	if !strings.HasSuffix(r.out, "Save this to use as the --reassignment-json-file option during rollback\nSuccessfully started partition reassignment for p-1\n") {
		t.Errorf("--execute printed %q", r.out)
	}
	if r = toolOK(t, "kafka-reassign-partitions.sh", "", "--bootstrap-server", b, "--verify", "--reassignment-json-file", plan); r.out != "Status of partition reassignment:\nReassignment of partition p-1 is completed.\n" {
		t.Errorf("--verify printed %q", r.out)
	}
	if r = toolOK(t, "kafka-reassign-partitions.sh", "", "--bootstrap-server", b, "--list"); r.out != "No partition reassignments found.\n" {
		t.Errorf("--list printed %q", r.out)
	}
	bad := write("bad.json", `{"version":1,"partitions":[{"topic":"p","partition":0,"replicas":[3]}]}`)
	if r = tool(t, "kafka-reassign-partitions.sh", "", "--bootstrap-server", b, "--execute", "--reassignment-json-file", bad); r.code != 1 || !strings.Contains(r.err, "Unknown broker id 3") {
		t.Errorf("--execute onto a missing broker: exit %d, %q", r.code, r.err)
	}
}

// TestServerStartStop formats a log directory with kafka-storage.sh, runs
// the broker with kafka-server-start.sh on a server.properties, uses it,
// and stops it with kafka-server-stop.sh.
func TestServerStartStop(t *testing.T) {
	skipSignalTest(t)
	t.Setenv("TMPDIR", t.TempDir()) // the server registry
	dir := t.TempDir()
	props := filepath.Join(dir, "server.properties")
	logs := filepath.Join(dir, "kraft-combined-logs")
	if err := os.WriteFile(props, []byte("node.id=1\nlisteners=PLAINTEXT://127.0.0.1:0\nlog.dirs="+logs+"\nkafkit.http.listen=\n"+
		"offsets.topic.replication.factor=1\ntransaction.state.log.replication.factor=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(toolOK(t, "kafka-storage.sh", "", "random-uuid").out)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`).MatchString(id) {
		t.Fatalf("random-uuid printed %q", id)
	}
	if r := toolOK(t, "kafka-storage.sh", "", "format", "-t", id, "-c", props); r.out != "Formatting "+logs+" with cluster.id "+id+".\n" {
		t.Errorf("format printed %q", r.out)
	}
	if r := tool(t, "kafka-storage.sh", "", "format", "-t", id, "-c", props); r.code != 1 || !strings.Contains(r.err, "is already formatted") {
		t.Errorf("format again: exit %d, %q", r.code, r.err)
	}
	toolOK(t, "kafka-storage.sh", "", "format", "-t", id, "-c", props, "--ignore-formatted")
	if r := toolOK(t, "kafka-storage.sh", "", "info", "-c", props); !strings.Contains(r.out, "Found metadata: {cluster.id="+id+", node.id=1, version=1}") {
		t.Errorf("info printed %q", r.out)
	}

	if r := tool(t, "kafka-server-stop.sh", ""); r.code != 1 || r.out != "No kafka server to stop\n" {
		t.Errorf("stop with no server: exit %d, %q", r.code, r.out)
	}
	var out, errOut syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main(context.Background(), []string{"/opt/kafka/bin/kafka-server-start.sh", props, "--override", "num.partitions=2"},
			IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
	}()
	addrRE := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+) \(data: ([^,]+), cluster id (\S+)\)`)
	var m []string
	for deadline := time.Now().Add(30 * time.Second); m == nil; m = addrRE.FindStringSubmatch(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("broker did not start: %q %q", out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m[2] != logs || strings.TrimSuffix(m[3], ")") != id {
		t.Errorf("broker runs on %s with cluster id %s, want %s and %s", m[2], m[3], logs, id)
	}
	toolOK(t, "kafka-topics.sh", "", "--bootstrap-server", m[1], "--create", "--topic", "t")
	if r := toolOK(t, "kafka-topics.sh", "", "--bootstrap-server", m[1], "--describe", "--topic", "t"); !strings.Contains(r.out, "PartitionCount: 2") {
		t.Errorf("--override num.partitions=2 not applied: %q", r.out)
	}
	toolOK(t, "kafka-server-stop.sh", "")
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(out.String(), "kafkit broker stopped") {
			t.Errorf("kafka-server-start exited %d: %q %q", code, out.String(), errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("broker did not stop after kafka-server-stop.sh")
	}
	if r := tool(t, "kafka-server-start.sh", ""); r.code != 1 || !strings.Contains(r.err, "USAGE: kafka-server-start.sh [-daemon] server.properties") {
		t.Errorf("no properties file: exit %d, %q", r.code, r.err)
	}
}
