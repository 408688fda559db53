package cli

import (
	"bytes"
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/producer"
)

// lockedBuffer lets the test read what a running command wrote so far.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// consoleConsumer starts `consume` with args in the background; wait
// returns its exit code once ctx is cancelled or it ends by itself.
func consoleConsumer(ctx context.Context, addr string, out, errOut *lockedBuffer, args ...string) (wait func() int) {
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

// kafka-console-consumer.sh commits every auto.commit.interval.ms while it
// runs, not only at exit: a consumer that is killed does not re-read
// everything it printed.
func TestConsoleConsumerCommitsPeriodically(t *testing.T) {
	addr := broker.NewTest(t).Addr()
	ok(t, addr, "", "topics", "create", "--topic", "ticks", "--partitions", "1")
	ok(t, addr, "t0\nt1\nt2\n", "produce", "--topic", "ticks")
	adm, err := admin.New(t.Context(), admin.Config{BootstrapServers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut lockedBuffer
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
	addr := broker.NewTest(t).Addr()
	ok(t, addr, "", "topics", "create", "--topic", "jobs", "--partitions", "1")
	ok(t, addr, "j0\nj1\n", "produce", "--topic", "jobs")
	adm, err := admin.New(t.Context(), admin.Config{BootstrapServers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()

	var out, errOut lockedBuffer
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
