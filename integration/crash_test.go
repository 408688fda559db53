package integration

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

type ackedRecord struct {
	partition int32
	offset    int64
}

// TestCrashDurability runs the broker as a child process in the durable
// flush mode (log.flush.interval.messages=1), produces with acks=all, kills
// it with SIGKILL mid-stream and restarts it on the same data dir: every
// acknowledged record must be there exactly once at its offset. Then a torn
// tail is written into a segment by hand: start-up truncates it and appends
// continue at the right offset.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs cmd/broker as a child process")
	}
	dataDir := t.TempDir()
	durable := []string{"--override", "log.flush.interval.messages=1", "--override", "num.partitions=3"}
	proc := startBrokerProcess(t, dataDir, durable...)

	cfg := saramaConfig()
	cfg.Producer.Flush.MaxMessages = 20
	prod, err := sarama.NewAsyncProducer([]string{proc.addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	acked := map[string]ackedRecord{}
	stopSending := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stopSending:
				return
			case prod.Input() <- &sarama.ProducerMessage{Topic: "crash", Key: sarama.StringEncoder(strconv.Itoa(i)), Value: sarama.StringEncoder("record-" + strconv.Itoa(i))}:
			}
		}
	}()
	const killAfter = 5000
	deadline := time.After(60 * time.Second)
	for len(acked) < killAfter {
		select {
		case m := <-prod.Successes():
			v, _ := m.Value.Encode()
			acked[string(v)] = ackedRecord{m.Partition, m.Offset}
		case <-prod.Errors():
		case <-deadline:
			t.Fatalf("only %d acks before the deadline", len(acked))
		}
	}
	proc.kill() // SIGKILL while records are in flight
	close(stopSending)
	// Drain what the producer reports after the crash: acks that arrived
	// before the kill still count.
	go prod.AsyncClose()
	drain := time.After(5 * time.Second)
drained:
	for {
		select {
		case m, ok := <-prod.Successes():
			if !ok {
				break drained
			}
			v, _ := m.Value.Encode()
			acked[string(v)] = ackedRecord{m.Partition, m.Offset}
		case _, ok := <-prod.Errors():
			if !ok {
				break drained
			}
		case <-drain:
			break drained
		}
	}

	proc = startBrokerProcess(t, dataDir, durable...)
	stored := readAll(t, proc.addr, "crash", 3)
	for v, a := range acked {
		got, ok := stored[a]
		if !ok {
			t.Fatalf("acknowledged %q at %d/%d is missing after the crash", v, a.partition, a.offset)
		}
		if got != v {
			t.Fatalf("offset %d/%d holds %q, acknowledged %q", a.partition, a.offset, got, v)
		}
	}
	seen := map[string]bool{}
	for _, v := range stored {
		if seen[v] {
			t.Fatalf("%q stored twice", v)
		}
		seen[v] = true
	}
	t.Logf("%d acknowledged records all present after SIGKILL (%d stored)", len(acked), len(stored))

	// Torn tail: a clean stop, then half a batch of garbage appended to the
	// active segment of partition 0.
	proc.stop(t)
	end0 := int64(0)
	for a := range stored {
		if a.partition == 0 && a.offset+1 > end0 {
			end0 = a.offset + 1
		}
	}
	segs, _ := filepath.Glob(filepath.Join(dataDir, "crash-0", "*.log"))
	sort.Strings(segs)
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := make([]byte, 40)
	copy(torn, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}) // a length field promising 256 bytes that never come
	f.Write(torn)
	f.Close()
	os.Remove(filepath.Join(dataDir, "crash-0", ".kafka_cleanshutdown")) // as after a crash

	proc = startBrokerProcess(t, dataDir, durable...)
	cfg = saramaConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	sp, err := sarama.NewSyncProducer([]string{proc.addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	p, off, err := sp.SendMessage(&sarama.ProducerMessage{Topic: "crash", Partition: 0, Value: sarama.StringEncoder("after-torn-tail")})
	if err != nil {
		t.Fatal(err)
	}
	if p != 0 || off != end0 {
		t.Fatalf("first append after the torn tail went to %d/%d, want 0/%d", p, off, end0)
	}
	after := readAll(t, proc.addr, "crash", 3)
	if after[ackedRecord{0, end0}] != "after-torn-tail" || len(after) != len(stored)+1 {
		t.Fatalf("after recovery: %d records, record at 0/%d = %q", len(after), end0, after[ackedRecord{0, end0}])
	}
}

// readAll consumes every partition of topic from the start to its end offset.
func readAll(t *testing.T, addr, topic string, partitions int32) map[ackedRecord]string {
	t.Helper()
	cfg := saramaConfig()
	client, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	out := map[ackedRecord]string{}
	for p := int32(0); p < partitions; p++ {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case m := <-pc.Messages():
				out[ackedRecord{p, m.Offset}] = string(m.Value)
				if m.Offset+1 >= end {
					goto next
				}
			case err := <-pc.Errors():
				t.Fatal(err)
			case <-time.After(20 * time.Second):
				t.Fatalf("partition %d: timed out reading to %d", p, end)
			}
		}
	next:
		pc.Close()
	}
	return out
}
