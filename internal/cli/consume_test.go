package cli

import (
	"bytes"
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/producer"
)

// consoleConsumer starts `consume` with args in the background; wait
// returns its exit code once ctx is cancelled or it ends by itself. out and
// errOut may be read once wait has returned.
func consoleConsumer(ctx context.Context, addr string, out, errOut *bytes.Buffer, args ...string) (wait func() int) {
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, append([]string{"--bootstrap-server", addr, "consume"}, args...), IO{In: strings.NewReader(""), Out: out, Err: errOut})
	}()
	return func() int { return <-done }
}

// awaitOffsets polls the group's committed offsets until they equal want.
func awaitOffsets(t *testing.T, adm *admin.Client, group string, want map[kafkit.TopicPartition]int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := adm.GroupOffsets(t.Context(), group)
		if err == nil && maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s committed %v (%v), want %v", group, got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendValues writes values to topic and waits for them to be acknowledged.
func sendValues(t *testing.T, addr, topic string, values ...string) {
	t.Helper()
	p, err := producer.New(producer.Config{BootstrapServers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	for _, v := range values {
		if err := p.Send(t.Context(), &kafkit.Record{Topic: topic, Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// topicWithRecords starts a broker with a one-partition topic holding the
// lines of records, and an admin client for it.
func topicWithRecords(t *testing.T, topic, records string) (string, *admin.Client) {
	t.Helper()
	addr := broker.NewTest(t).Addr()
	ok(t, addr, "", "topics", "create", "--topic", topic, "--partitions", "1")
	ok(t, addr, records, "produce", "--topic", topic)
	adm, err := admin.New(t.Context(), admin.Config{BootstrapServers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.Close() })
	return addr, adm
}

// kafka-console-consumer.sh commits every auto.commit.interval.ms while it
// runs, not only at exit: a consumer that is killed does not re-read
// everything it printed.
func TestConsoleConsumerCommitsPeriodically(t *testing.T) {
	addr, adm := topicWithRecords(t, "ticks", "t0\nt1\nt2\n")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut bytes.Buffer
	wait := consoleConsumer(ctx, addr, &out, &errOut, "--topic", "ticks", "--group", "g", "--from-beginning", "--consumer-property", "auto.commit.interval.ms=100")
	tp := kafkit.TopicPartition{Topic: "ticks"}
	awaitOffsets(t, adm, "g", map[kafkit.TopicPartition]int64{tp: 3}) // while it still runs
	sendValues(t, addr, "ticks", "t3")
	awaitOffsets(t, adm, "g", map[kafkit.TopicPartition]int64{tp: 4})

	cancel()
	if code := wait(); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if out.String() != "t0\nt1\nt2\nt3\n" || errOut.String() != "Processed a total of 4 messages\n" {
		t.Errorf("printed %q, %q", out.String(), errOut.String())
	}
}

// With --max-messages, records a Poll returned past the limit are not
// printed, so they must not be committed either: the next run prints them.
func TestConsoleConsumerCommitsOnlyPrinted(t *testing.T) {
	addr, adm := topicWithRecords(t, "jobs", "j0\nj1\n")

	var out, errOut bytes.Buffer
	wait := consoleConsumer(t.Context(), addr, &out, &errOut, "--topic", "jobs", "--group", "g", "--from-beginning", "--max-messages", "3", "--consumer-property", "auto.commit.interval.ms=100")
	tp := kafkit.TopicPartition{Topic: "jobs"}
	// Two printed and committed; the next Poll returns up to three more
	// records of one batch, of which one is printed.
	awaitOffsets(t, adm, "g", map[kafkit.TopicPartition]int64{tp: 2})
	sendValues(t, addr, "jobs", "j2", "j3", "j4")
	if code := wait(); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if out.String() != "j0\nj1\nj2\n" {
		t.Errorf("printed %q", out.String())
	}
	awaitOffsets(t, adm, "g", map[kafkit.TopicPartition]int64{tp: 3})
	if r := ok(t, addr, "", "consume", "--topic", "jobs", "--group", "g", "--max-messages", "2"); r.out != "j3\nj4\n" {
		t.Errorf("second run printed %q, want the two the first left", r.out)
	}
}
