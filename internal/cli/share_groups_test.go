package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
)

// fields splits a table's lines into their cells.
func fields(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

// TestShareGroupsCommands drives kafkit share-groups and kafka-share-groups.sh
// over a share group that our share consumer worked through.
func TestShareGroupsCommands(t *testing.T) {
	addr := broker.NewTest(t).Addr()
	ok(t, addr, "", "topics", "create", "--topic", "jobs", "--partitions", "1")
	var in strings.Builder
	for i := range 10 {
		fmt.Fprintf(&in, "j%d\n", i)
	}
	ok(t, addr, in.String(), "produce", "--topic", "jobs")
	ok(t, addr, "", "configs", "alter", "--entity-type", "groups", "--entity-name", "workers", "--add-config", "share.record.lock.duration.ms=15000")
	if r := ok(t, addr, "", "configs", "describe", "--entity-type", "groups", "--entity-name", "workers"); !strings.Contains(r.out, "share.record.lock.duration.ms=15000") {
		t.Errorf("group configs: %q", r.out)
	}
	if r := run(t, addr, "", "configs", "alter", "--entity-type", "groups", "--entity-name", "workers", "--add-config", "share.auto.offset.reset=soon"); r.code == 0 {
		t.Errorf("an invalid share.auto.offset.reset was accepted")
	}
	// A share group starts at the latest offset: reset it to the start first.
	ok(t, addr, "", "share-groups", "reset-offsets", "--group", "workers", "--topic", "jobs", "--to-earliest", "--execute")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc, err := consumer.NewShare(ctx, consumer.ShareConfig{BootstrapServers: []string{addr}, GroupID: "workers", FetchMaxWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Subscribe("jobs"); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 10; {
		recs, err := sc.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(recs)
	}
	res, err := sc.CommitSync(ctx)
	if err != nil || len(res) != 1 {
		t.Fatalf("commit: %v %v", res, err)
	}
	if r := ok(t, addr, "", "share-groups", "describe", "--group", "workers", "--members"); len(fields(r.out)) != 2 || fields(r.out)[1][4] != "1" {
		t.Errorf("members: %q", r.out)
	}
	if r := run(t, addr, "", "share-groups", "reset-offsets", "--group", "workers", "--all-topics", "--to-earliest", "--execute"); r.code == 0 {
		t.Errorf("reset of a group with a member succeeded: %q", r.out)
	}
	if err := sc.Close(ctx); err != nil {
		t.Fatal(err)
	}

	if r := ok(t, addr, "", "share-groups", "list"); r.out != "workers\n" {
		t.Errorf("list: %q", r.out)
	}
	want := [][]string{{"GROUP", "TOPIC", "PARTITION", "START-OFFSET", "LAG"}, {"workers", "jobs", "0", "10", "0"}}
	if r := toolOK(t, "kafka-share-groups.sh", "", "--bootstrap-server", addr, "--describe", "--group", "workers"); fmt.Sprint(fields(r.out)) != fmt.Sprint(want) {
		t.Errorf("describe: %q", r.out)
	}
	if r := ok(t, addr, "", "share-groups", "describe", "--group", "workers", "--state"); fmt.Sprint(fields(r.out)[1]) != "[workers Empty 0]" {
		t.Errorf("state: %q", r.out)
	}
	ok(t, addr, "", "share-groups", "reset-offsets", "--group", "workers", "--all-topics", "--to-offset", "4", "--execute")
	want[1][3], want[1][4] = "4", "6"
	if r := ok(t, addr, "", "share-groups", "describe", "--group", "workers", "--offsets"); fmt.Sprint(fields(r.out)) != fmt.Sprint(want) {
		t.Errorf("describe after the reset: %q", r.out)
	}
	toolOK(t, "kafka-share-groups.sh", "", "--bootstrap-server", addr, "--delete-offsets", "--group", "workers", "--topic", "jobs")
	if r := ok(t, addr, "", "share-groups", "describe", "--group", "workers"); len(fields(r.out)) != 1 {
		t.Errorf("describe after delete-offsets: %q", r.out)
	}
	if r := toolOK(t, "kafka-share-groups.sh", "", "--bootstrap-server", addr, "--delete", "--group", "workers"); r.out != "Deletion of requested share groups ('workers') was successful.\n" {
		t.Errorf("delete: %q", r.out)
	}
	if r := ok(t, addr, "", "share-groups", "list"); r.out != "" {
		t.Errorf("list after delete: %q", r.out)
	}
}
