package broker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestDataDirLock: a second broker on the same log.dirs refuses to start
// with Kafka's message while the first runs, and starts once it closed.
func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	if err := cfg.Set(DevOverrides); err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	first, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "Failed to acquire lock on file .lock in "+dir) || !errors.Is(err, errDirLocked) {
		t.Fatalf("second broker on the same directory: %v, want the lock refused", err)
	}
	if err := first.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, lockFileName)); err != nil {
		t.Fatal(err)
	}
	again, err := New(cfg)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	if err := again.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestWindowsDeviceName(t *testing.T) {
	for topic, want := range map[string]string{
		"orders": "", "con": "", "nul": "", "con-x": "", "console.x": "", "com0.x": "", "com10.x": "",
		"con.orders": "con", "NUL.x": "NUL", "Aux.y": "Aux", "prn.": "prn", "com1.a": "com1", "LPT9.b": "LPT9",
	} {
		if got := windowsDeviceName(topic); got != want {
			t.Errorf("windowsDeviceName(%q) = %q, want %q", topic, got, want)
		}
	}
}

func TestCollisionKey(t *testing.T) {
	if collisionKey("a.b", false) != collisionKey("a_b", false) {
		t.Error("'.' and '_' must collide everywhere")
	}
	if collisionKey("Orders", false) == collisionKey("orders", false) {
		t.Error("case must not collide where file names keep it")
	}
	if collisionKey("Orders.x", true) != collisionKey("orders_X", true) {
		t.Error("case must collide where file names ignore it")
	}
}

// TestTopicNamesThisPlatformCannotStore: CreateTopics refuses, with
// INVALID_TOPIC_EXCEPTION, the names whose directories this platform cannot
// keep apart or create.
func TestTopicNamesThisPlatformCannotStore(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "Orders", 1)
	_, err := b.topics.create(createSpec{name: "orders", partitions: 1, replicationFactor: 1})
	if foldCaseNames != errors.Is(err, kerr.InvalidTopicException) {
		t.Errorf("orders beside Orders with foldCaseNames=%v: %v", foldCaseNames, err)
	}
	_, err = b.topics.create(createSpec{name: "con.orders", partitions: 1, replicationFactor: 1})
	if noDeviceNames != errors.Is(err, kerr.InvalidTopicException) {
		t.Errorf("con.orders with noDeviceNames=%v: %v", noDeviceNames, err)
	}
}

func TestDiskSpace(t *testing.T) {
	total, usable, err := diskSpace(t.TempDir())
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no disk statistics on this platform")
	}
	if err != nil || total <= 0 || usable < 0 || usable > total {
		t.Fatalf("diskSpace = %d, %d, %v", total, usable, err)
	}
}
