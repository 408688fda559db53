package brokercmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/testutil/syncbuf"
)

func TestBadConfigStopsStartupNamingTheKey(t *testing.T) {
	dir := t.TempDir()
	props := filepath.Join(dir, "server.properties")
	os.WriteFile(props, []byte("log.dirs="+dir+"\nnum.partitions=many\nlog.segment.bytes=1\nsome.unknown.key=1\n"), 0o644)
	var out, errOut bytes.Buffer
	err := Run([]string{"--config", props, "--listen", "127.0.0.1:0"}, &out, &errOut)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, key := range []string{"num.partitions", "log.segment.bytes"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	if err := Run([]string{"--override", "nonsense"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "--override") {
		t.Errorf("bad --override: %v", err)
	}
}

func TestRunsAndStopsOnSignal(t *testing.T) {
	skipSignalTest(t)
	dir := t.TempDir()
	var out, errOut syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run([]string{"--listen", "127.0.0.1:0", "--data-dir", dir, "--override", "made.up=1", "--override", "zookeeper.connect=localhost:2181", "--http", ""}, &out, &errOut)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "listening on 127.0.0.1:") {
		if time.Now().After(deadline) {
			t.Fatalf("no address printed; stdout %q stderr %q", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out.String(), dir) {
		t.Errorf("data dir not printed: %q", out.String())
	}
	if !strings.Contains(errOut.String(), "made.up") {
		t.Errorf("unknown key not warned about: %q", errOut.String())
	}
	if !strings.Contains(errOut.String(), "ZooKeeper is not used") || !strings.Contains(errOut.String(), "key=zookeeper.connect") {
		t.Errorf("zookeeper.connect not explained: %q", errOut.String())
	}
	stopRun(t, done)
	if !strings.Contains(out.String(), "stopped") {
		t.Errorf("no stop message: %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "meta.properties")); err != nil {
		t.Errorf("meta.properties not written: %v", err)
	}
}
