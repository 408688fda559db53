//go:build linux || darwin

package broker

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCreatedTopicSurvivesKill (issue 16): CreateTopics creates no file for
// a new partition (its log makes its directory and files at its first
// write), so the topic's existence rests on topics.json alone. A broker in
// durable flush mode (log.flush.interval.messages=1) in a child process
// answers CreateTopics OK and acknowledges one record in some partitions;
// after kill -9 the restarted broker has the topic with every partition,
// the acknowledged records, and takes records in the partitions never
// written.
func TestCreatedTopicSurvivesKill(t *testing.T) {
	if dir := os.Getenv("KAFKIT_KILL_CHILD_DIR"); dir != "" {
		b, err := New(killTestConfig(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ADDR %s\n", b.Addr())
		select {} // until killed
	}
	const partitions, written = 200, 50
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCreatedTopicSurvivesKill$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "KAFKIT_KILL_CHILD_DIR="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	var addr string
	for addr == "" && lines.Scan() {
		addr, _ = strings.CutPrefix(lines.Text(), "ADDR ")
	}
	if addr == "" {
		t.Fatalf("the child broker printed no address (%v)", lines.Err())
	}

	cl := killTestClient(t, addr)
	resp, err := createTopicsRequest("t", partitions).RequestWith(context.Background(), cl)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("CreateTopics: %v %+v", err, resp)
	}
	produceEach(t, cl, "t", written)
	cl.Close()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	b, err := New(killTestConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	cl = killTestClient(t, b.Addr())
	defer cl.Close()
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.Topics) != 1 || len(meta.Topics[0].Partitions) != partitions {
		t.Fatalf("after kill -9: %d topics, want topic t with %d partitions", len(meta.Topics), partitions)
	}
	for _, p := range meta.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("partition %d: error %d", p.Partition, p.ErrorCode)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for p := int32(written); p < partitions; p++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Partition: p, Value: []byte("after")}).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d after the restart: %v", p, err)
		}
	}
	offsets := map[int32]kgo.Offset{}
	for p := range int32(partitions) {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{"t": offsets})
	seen := map[int32]string{}
	for len(seen) < partitions && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if r.Offset == 0 {
				seen[r.Partition] = string(r.Value)
			}
		})
	}
	for p := range int32(partitions) {
		want := "after"
		if p < written {
			want = fmt.Sprintf("p%d", p)
		}
		if seen[p] != want {
			t.Fatalf("partition %d offset 0: %q, want %q", p, seen[p], want)
		}
	}
}

func killTestConfig(t *testing.T, dir string) Config {
	t.Helper()
	cfg := DefaultConfig()
	if err := cfg.Set(DevOverrides); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Set(map[string]string{"log.flush.interval.messages": "1"}); err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	return cfg
}

func killTestClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequestTimeoutOverhead(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
