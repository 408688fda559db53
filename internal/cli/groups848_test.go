package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/consumer"
)

// TestGroupsDescribeConsumerProtocol: a group of our consumer on
// group.protocol=consumer is listed with its type and described with the
// member's epoch and assignments, as kafka-consumer-groups.sh shows a
// KIP-848 group.
func TestGroupsDescribeConsumerProtocol(t *testing.T) {
	addr := broker.NewTest(t, broker.WithConfig(func(c *broker.Config) { c.GroupConsumerHeartbeatIntervalMs = 100 })).Addr()
	ok(t, addr, "", "topics", "create", "--topic", "jobs", "--partitions", "2")
	ctx := t.Context()
	c, err := consumer.New(ctx, consumer.Config{BootstrapServers: []string{addr}, GroupID: "workers848", ClientID: "worker-1",
		GroupProtocol: consumer.GroupProtocolConsumer, GroupRemoteAssignor: "range", DisableAutoCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.Subscribe("jobs"); err != nil {
		t.Fatal(err)
	}
	// Poll runs the assignment callbacks; nothing is produced, so each
	// Poll returns when its short context ends.
	for deadline := time.Now().Add(10 * time.Second); len(c.Assignment()) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("no assignment within 10s")
		}
		pollCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		c.Poll(pollCtx)
		cancel()
	}
	adm, err := admin.New(ctx, admin.Config{BootstrapServers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ds, err := adm.DescribeGroups(ctx, "workers848")
	if err != nil || len(ds[0].Members) != 1 || ds[0].Type != "consumer" || ds[0].Protocol != "range" {
		t.Fatalf("describe: %v %+v", err, ds)
	}
	m := ds[0].Members[0]
	mask := strings.NewReplacer(m.MemberID, "<MEMBER-ID>", m.Host, "<HOST>")
	golden(t, "groups_list_type", ok(t, addr, "", "groups", "list", "--type", "--state").out)
	golden(t, "groups_describe_members_848", mask.Replace(ok(t, addr, "", "groups", "describe", "--group", "workers848", "--members", "--verbose").out))
	golden(t, "groups_describe_state_848", strings.ReplaceAll(ok(t, addr, "", "groups", "describe", "--group", "workers848", "--state", "--verbose").out, addr, "<ADDR>"))
	if out := ok(t, addr, "", "groups", "list", "--type", "classic").out; out != "GROUP  TYPE\n" {
		t.Errorf("groups of type classic: %q", out)
	}
	if out := ok(t, addr, "", "groups", "list", "--type=consumer").out; !strings.Contains(out, "workers848  consumer") {
		t.Errorf("groups of type consumer: %q", out)
	}
}
