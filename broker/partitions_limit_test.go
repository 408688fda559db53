//go:build linux || darwin

package broker

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestManyPartitionsUnderFileLimit (issue 16): a topic of many partitions
// on disk, under an open-file limit of twice the partition count (three
// files a partition would not fit), is created, gets one record in each
// partition, survives a restart and reads back every record. It runs in a
// child process whose RLIMIT_NOFILE is lowered, so the limit binds nothing
// else. The default run uses 1,000 partitions and a 2,000 limit; with
// KAFKIT_PARTITIONS_10K=1 it is the 10,000 under 20,000 with the
// default log.max.open.files.
func TestManyPartitionsUnderFileLimit(t *testing.T) {
	partitions, maxOpen := int32(1000), int64(1000)
	if os.Getenv("KAFKIT_PARTITIONS_10K") != "" {
		partitions, maxOpen = 10_000, DefaultConfig().LogMaxOpenFiles
	}
	limit := uint64(2 * partitions)
	if os.Getenv("KAFKIT_FILE_LIMIT_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestManyPartitionsUnderFileLimit$", "-test.v", "-test.timeout=20m")
		cmd.Env = append(os.Environ(), "KAFKIT_FILE_LIMIT_CHILD=1")
		out, err := cmd.CombinedOutput()
		t.Logf("child process:\n%s", out)
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		return
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		t.Fatal(err)
	}
	t.Logf("RLIMIT_NOFILE %d, %d partitions, log.max.open.files %d", limit, partitions, maxOpen)
	cfg := DefaultConfig()
	if err := cfg.Set(DevOverrides); err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.DataDir, cfg.LogMaxOpenFiles = "127.0.0.1:0", t.TempDir(), maxOpen
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequestTimeoutOverhead(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := createTopicsRequest("wide", partitions).RequestWith(context.Background(), cl)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("CreateTopics: %v %+v", err, resp)
	}
	t.Logf("created %d partitions in %v", partitions, time.Since(start))
	produceEach(t, cl, "wide", partitions)
	cl.Close()
	start = time.Now()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("closed in %v", time.Since(start))

	start = time.Now()
	if b, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted in %v", time.Since(start))
	defer b.Close(context.Background())
	offsets := map[int32]kgo.Offset{}
	for p := range partitions {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl, err = kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"wide": offsets}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	seen := map[int32]bool{}
	for len(seen) < int(partitions) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(topic string, p int32, err error) {
			if ctx.Err() == nil {
				t.Errorf("%s-%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if want := "p" + strconv.Itoa(int(r.Partition)); string(r.Value) != want || r.Offset != 0 || seen[r.Partition] {
				t.Errorf("partition %d offset %d: %q, want one record %q", r.Partition, r.Offset, r.Value, want)
			}
			seen[r.Partition] = true
		})
	}
	if len(seen) != int(partitions) {
		t.Fatalf("read back %d of %d partitions", len(seen), partitions)
	}
	t.Logf("read back one record from each of %d partitions", partitions)
}
