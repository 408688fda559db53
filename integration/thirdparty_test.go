package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit/broker"
)

// Third-party clients outside Go, run against the embedded broker (on disk,
// so fetches go through sendfile) when they are installed: kcat
// (librdkafka), kafka-python and kafkajs. .ci/run installs them from Debian's
// and npm's registries; elsewhere these tests skip and say what is missing.

func runTool(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

func TestKcat(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat (librdkafka) is not installed: apt-get install kcat")
	}
	b := broker.NewTest(t, broker.OnDisk())
	var in strings.Builder
	for i := range 2000 {
		in.WriteString("k" + strconv.Itoa(i%13) + ":v" + strconv.Itoa(i) + "\n")
	}
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		topic := "kcat-" + codec
		runTool(t, in.String(), "kcat", "-b", b.Addr(), "-P", "-t", topic, "-K:", "-z", codec, "-X", "enable.idempotence=true")
		out := runTool(t, "", "kcat", "-b", b.Addr(), "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k=%s\n")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2000 {
			t.Fatalf("%s: consumed %d records, want 2000", codec, len(lines))
		}
		seen := map[string]bool{}
		for _, l := range lines {
			seen[l] = true
		}
		for i := range 2000 {
			if want := "k" + strconv.Itoa(i%13) + "=v" + strconv.Itoa(i); !seen[want] {
				t.Fatalf("%s: %q missing", codec, want)
			}
		}
	}
	// A consumer group (-G) reads everything once and commits.
	out := runTool(t, "", "kcat", "-b", b.Addr(), "-G", "kcat-group", "kcat-lz4", "-o", "beginning", "-e", "-q", "-X", "auto.offset.reset=earliest")
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 2000 {
		t.Fatalf("group consumer read %d records, want 2000", n)
	}
	md := runTool(t, "", "kcat", "-b", b.Addr(), "-L", "-t", "kcat-zstd")
	if !strings.Contains(md, `topic "kcat-zstd" with 1 partitions`) {
		t.Fatalf("metadata:\n%s", md)
	}
}

// pythonWithKafka finds an interpreter that can import kafka-python.
func pythonWithKafka() string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import kafka").Run() == nil {
			return py
		}
	}
	return ""
}

func TestKafkaPython(t *testing.T) {
	py := pythonWithKafka()
	if py == "" {
		t.Skip("kafka-python is not installed: apt-get install python3-kafka")
	}
	b := broker.NewTest(t, broker.OnDisk())
	script, _ := filepath.Abs("testdata/thirdparty/kafka_python_smoke.py")
	if out := runTool(t, "", py, script, b.Addr()); !strings.Contains(out, "ok") {
		t.Fatalf("kafka-python: %s", out)
	}
}

func TestKafkaJS(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	// .ci/run installs kafkajs into KAFKIT_NODE_MODULES' parent.
	modules := os.Getenv("KAFKIT_NODE_MODULES")
	if modules == "" {
		modules = filepath.Join(os.Getenv("HOME"), ".cache", "kafkit-node", "node_modules")
	}
	if _, err := os.Stat(filepath.Join(modules, "kafkajs")); err != nil {
		t.Skipf("kafkajs is not installed in %s: npm install --prefix %s kafkajs@2", modules, filepath.Dir(modules))
	}
	b := broker.NewTest(t, broker.OnDisk())
	script, _ := filepath.Abs("testdata/thirdparty/kafkajs_smoke.js")
	t.Setenv("NODE_PATH", modules)
	t.Setenv("KAFKAJS_NO_PARTITIONER_WARNING", "1")
	if out := runTool(t, "", "node", script, b.Addr()); !strings.Contains(out, "ok") {
		t.Fatalf("kafkajs: %s", out)
	}
}
