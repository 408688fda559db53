package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit/broker"
)

// The KIP-853 way to set up controllers, as Kafka 4's docs do, through
// the tools over TCP: format the first controller --standalone and the
// others --no-initial-controllers, start them, add-controller each of the
// others, then remove-controller the first; the refusals are Kafka's.
func TestMetadataQuorumToolAddRemoveController(t *testing.T) {
	const n = 3
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	clusterID := broker.NewClusterID()
	files := make([]string, n+1)
	dirs := make([]string, n+1)
	for id := 1; id <= n; id++ {
		dirs[id] = t.TempDir()
		files[id] = filepath.Join(t.TempDir(), "controller.properties")
		props := fmt.Sprintf("process.roles=controller\nnode.id=%d\ncontroller.quorum.bootstrap.servers=%s\nlisteners=CONTROLLER://%s\n"+
			"controller.listener.names=CONTROLLER\nlog.dirs=%s\ncontroller.quorum.election.timeout.ms=500\n", id, strings.Join(addrs, ","), addrs[id-1], dirs[id])
		if err := os.WriteFile(files[id], []byte(props), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r := tool(t, "kafka-storage.sh", "", "format", "-t", clusterID, "-c", files[2]); r.code == 0 || !strings.Contains(r.err, "you must specify one of the following: --standalone, --initial-controllers, or --no-initial-controllers") {
		t.Errorf("format without a quorum option: %+v", r)
	}
	if r := tool(t, "kafka-storage.sh", "", "format", "-t", clusterID, "-c", files[2], "--standalone", "--no-initial-controllers"); r.code == 0 || !strings.Contains(r.err, "Only one of") {
		t.Errorf("format with two quorum options: %+v", r)
	}
	toolOK(t, "kafka-storage.sh", "", "format", "-t", clusterID, "-c", files[1], "--standalone")
	for id := 2; id <= n; id++ {
		toolOK(t, "kafka-storage.sh", "", "format", "-t", clusterID, "-c", files[id], "--no-initial-controllers")
	}
	nodes := make([]*broker.Broker, n+1)
	for id := 1; id <= n; id++ {
		f, err := os.Open(files[id])
		if err != nil {
			t.Fatal(err)
		}
		props, err := broker.ReadProperties(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, err := broker.ConfigFromProperties(props)
		if err != nil {
			t.Fatal(err)
		}
		if nodes[id], err = broker.New(cfg); err != nil {
			t.Fatalf("controller %d: %v", id, err)
		}
		b := nodes[id]
		t.Cleanup(func() { b.Close(context.Background()) })
	}

	voters := func(bc string) string {
		t.Helper()
		var last result
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if last = tool(t, "kafka-metadata-quorum.sh", "", "--bootstrap-controller", bc, "describe", "--status"); last.code == 0 {
				m := regexp.MustCompile(`(?m)^CurrentVoters:\s+(.*)$`).FindStringSubmatch(last.out)
				var ids []string
				for _, id := range regexp.MustCompile(`"id": (\d+)`).FindAllStringSubmatch(m[1], -1) {
					ids = append(ids, id[1])
				}
				return strings.Join(ids, ",")
			}
		}
		t.Fatalf("describe --status through %s: %+v", bc, last)
		return ""
	}
	if got := voters(addrs[0]); got != "1" {
		t.Fatalf("voters of the standalone controller: %s", got)
	}
	for id := 2; id <= n; id++ {
		out := toolOK(t, "kafka-metadata-quorum.sh", "", "--bootstrap-controller", addrs[0], "--command-config", files[id], "add-controller").out
		if want := regexp.MustCompile(fmt.Sprintf(`^Added controller %d with directory id [A-Za-z0-9_-]{22} and endpoints: CONTROLLER://%s\n$`, id, regexp.QuoteMeta(addrs[id-1]))); !want.MatchString(out) {
			t.Errorf("add-controller %d: %q", id, out)
		}
	}
	if got := voters(addrs[0]); got != "1,2,3" {
		t.Fatalf("voters after add-controller: %s", got)
	}
	if r := tool(t, "kafka-metadata-quorum.sh", "", "--bootstrap-controller", addrs[1], "--command-config", files[2], "add-controller"); r.code == 0 || !strings.Contains(r.err, "DUPLICATE_VOTER") {
		t.Errorf("add-controller of a voter: %+v", r)
	}
	if r := tool(t, "kafka-metadata-quorum.sh", "", "--bootstrap-controller", addrs[0], "add-controller"); r.code == 0 || !strings.Contains(r.err, "You must supply the configuration file of the controller") {
		t.Errorf("add-controller without --command-config: %+v", r)
	}
	meta, err := readProperties(filepath.Join(dirs[1], "meta.properties"))
	if err != nil {
		t.Fatal(err)
	}
	dir := meta["directory.id"]
	if r := tool(t, "kafka-metadata-quorum.sh", "", "--bootstrap-controller", addrs[0], "remove-controller", "--controller-id", "1", "--controller-directory-id", "AAAAAAAAAAAAAAAAAAAAAA"); r.code == 0 || !strings.Contains(r.err, "INVALID_REQUEST") {
		t.Errorf("remove-controller with the zero directory id: %+v", r)
	}
	if r := tool(t, "kafka-metadata-quorum.sh", "", "--bootstrap-controller", addrs[0], "remove-controller", "--controller-id", "9", "--controller-directory-id", dir); r.code == 0 || !strings.Contains(r.err, "VOTER_NOT_FOUND") {
		t.Errorf("remove-controller of no voter: %+v", r)
	}
	if r := tool(t, "kafka-metadata-quorum.sh", "", "--bootstrap-controller", addrs[0], "remove-controller", "--controller-id", "1", "--controller-directory-id", "nope"); r.code == 0 || !strings.Contains(r.err, "Failed to parse --controller-directory-id") {
		t.Errorf("remove-controller with a bad directory id: %+v", r)
	}
	out := toolOK(t, "kafka-metadata-quorum.sh", "", "--bootstrap-controller", addrs[1], "remove-controller", "--controller-id", "1", "--controller-directory-id", dir).out
	if out != "Removed KRaft controller 1 with directory id "+dir+"\n" {
		t.Errorf("remove-controller: %q", out)
	}
	if got := voters(addrs[1]); got != "2,3" {
		t.Fatalf("voters after remove-controller 1: %s", got)
	}
}
