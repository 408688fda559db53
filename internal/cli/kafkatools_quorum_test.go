package cli

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit/broker"
)

// kafka-metadata-quorum.sh describe against a three-node cluster: the
// status summary and the replication table as Kafka's tool prints them;
// kafka-cluster.sh cluster-id and unregister of a killed broker.
func TestMetadataQuorumTool(t *testing.T) {
	c := broker.NewTestCluster(t, 3)
	addr := strings.Join(c.Addrs(), ",")
	ctl := c.Controller()
	clusterID := c.Broker(ctl).ClusterID()

	var status string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		// Followers are known once a heartbeat was answered: MaxFollowerLag 0.
		if status = toolOK(t, "kafka-metadata-quorum.sh", "", "--bootstrap-server", addr, "describe", "--status").out; strings.Contains(status, "MaxFollowerLag:         0\n") {
			break
		}
	}
	for _, want := range []string{
		"ClusterId:              " + clusterID + "\n",
		fmt.Sprintf("LeaderId:               %d\n", ctl),
		"MaxFollowerLag:         0\n",
		"CurrentObservers:       []\n",
	} {
		if !strings.Contains(status, want) {
			t.Errorf("--status lacks %q:\n%s", want, status)
		}
	}
	voters := regexp.MustCompile(`CurrentVoters:          \[\{"id": 1, "directoryId": null, "endpoints": \["CONTROLLER://127\.0\.0\.1:\d+"\]\}, \{"id": 2, .*\{"id": 3, "directoryId": null, "endpoints": \["CONTROLLER://127\.0\.0\.1:\d+"\]\}\]\n`)
	if !voters.MatchString(status) || !regexp.MustCompile(`LeaderEpoch:            [1-9]\d*\n`).MatchString(status) || !regexp.MustCompile(`HighWatermark:          [1-9]\d*\n`).MatchString(status) {
		t.Errorf("--status:\n%s", status)
	}

	rep := ok(t, addr, "", "metadata-quorum", "describe", "--replication", "--human-readable").out
	lines := strings.Split(strings.TrimSuffix(rep, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "NodeId\tDirectoryId           \tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus  \t") {
		t.Fatalf("--replication:\n%q", rep)
	}
	row := regexp.MustCompile(`^(\d)\s*\tAAAAAAAAAAAAAAAAAAAAAA\t\d+\s*\t(\d+)\s*\t\d+ ms ago\s*\t\d+ ms ago\s*\t(Leader|Follower)\s*\t$`)
	for i, l := range lines[1:] {
		m := row.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("--replication row %q", l)
			continue
		}
		if want := "Follower"; i == 0 && (m[3] != "Leader" || m[1] != fmt.Sprint(ctl) || m[2] != "0") || i > 0 && m[3] != want {
			t.Errorf("--replication row %d %q (controller %d)", i, l, ctl)
		}
	}
	if r := run(t, addr, "", "metadata-quorum", "describe", "--status", "--replication"); r.code == 0 || !strings.Contains(r.err, "Only one of --status or --replication") {
		t.Errorf("both: %+v", r)
	}
	if r := run(t, addr, "", "metadata-quorum", "describe"); r.code == 0 || !strings.Contains(r.err, "One of --status or --replication must be specified") {
		t.Errorf("neither: %+v", r)
	}

	if out := toolOK(t, "kafka-cluster.sh", "", "cluster-id", "--bootstrap-server", addr).out; out != "Cluster ID: "+clusterID+"\n" {
		t.Errorf("cluster-id: %q", out)
	}
	gone := ctl%3 + 1
	c.Kill(gone)
	c.AwaitLive(2)
	addr = strings.Join(c.Addrs(), ",")
	if out := toolOK(t, "kafka-cluster.sh", "", "unregister", "--bootstrap-server", addr, "--id", fmt.Sprint(gone)).out; out != fmt.Sprintf("Broker %d is no longer registered.\n", gone) {
		t.Errorf("unregister: %q", out)
	}
	if r := tool(t, "kafka-cluster.sh", "", "unregister", "--bootstrap-server", addr, "--id", fmt.Sprint(gone)); r.code == 0 || !strings.Contains(r.err, "BROKER_ID_NOT_REGISTERED") {
		t.Errorf("unregister again: %+v", r)
	}
}

// --bootstrap-controller (KIP-919): the tools talk to the controllers'
// CONTROLLER endpoints only. Given a standby controller alone (which
// answers DescribeQuorum with NOT_LEADER_OR_FOLLOWER), the admin client
// finds the active controller from the controllers' DescribeCluster.
func TestMetadataQuorumToolBootstrapController(t *testing.T) {
	c := broker.NewTestCluster(t, 3)
	ctl := c.Controller()
	standby := ctl%3 + 1
	gone := standby%3 + 1
	if gone == ctl {
		gone = gone%3 + 1
	}
	addrs := c.ControllerAddrs()
	bc := addrs[standby]
	clusterID := c.Broker(ctl).ClusterID()

	status := toolOK(t, "kafka-metadata-quorum.sh", "", "--bootstrap-controller", bc, "describe", "--status").out
	for _, want := range []string{"ClusterId:              " + clusterID + "\n", fmt.Sprintf("LeaderId:               %d\n", ctl)} {
		if !strings.Contains(status, want) {
			t.Errorf("--status through standby %d lacks %q:\n%s", standby, want, status)
		}
	}
	rep := toolOK(t, "kafka-metadata-quorum.sh", "", "--bootstrap-controller", bc, "describe", "--replication").out
	if lines := strings.Split(strings.TrimSuffix(rep, "\n"), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[1], fmt.Sprint(ctl)) || !strings.Contains(lines[1], "Leader") {
		t.Errorf("--replication:\n%s", rep)
	}
	if out := toolOK(t, "kafka-cluster.sh", "", "cluster-id", "--bootstrap-controller", bc).out; out != "Cluster ID: "+clusterID+"\n" {
		t.Errorf("cluster-id: %q", out)
	}
	// kafkit cluster describe lists the controllers and their endpoints.
	desc := ok(t, "", "", "cluster", "describe", "--bootstrap-controller", bc).out
	if !strings.Contains(desc, fmt.Sprintf("Controller: %d\n", ctl)) {
		t.Errorf("describe:\n%s", desc)
	}
	for id, addr := range addrs {
		_, port, _ := strings.Cut(addr, ":")
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d\s+127\.0\.0\.1\s+%s\s`, id, port)).MatchString(desc) {
			t.Errorf("describe lacks controller %d at %s:\n%s", id, addr, desc)
		}
	}
	if r := run(t, c.Addrs()[0], "", "metadata-quorum", "--bootstrap-controller", bc, "describe", "--status"); r.code == 0 || !strings.Contains(r.err, "Only one of --bootstrap-server or --bootstrap-controller") {
		t.Errorf("both: %+v", r)
	}

	c.Kill(gone)
	c.AwaitLive(2)
	if out := toolOK(t, "kafka-cluster.sh", "", "unregister", "--bootstrap-controller", bc, "--id", fmt.Sprint(gone)).out; out != fmt.Sprintf("Broker %d is no longer registered.\n", gone) {
		t.Errorf("unregister: %q", out)
	}
	if r := tool(t, "kafka-cluster.sh", "", "unregister", "--bootstrap-controller", bc, "--id", fmt.Sprint(gone)); r.code == 0 || !strings.Contains(r.err, "BROKER_ID_NOT_REGISTERED") {
		t.Errorf("unregister again: %+v", r)
	}
}
