package brokercmd

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/testutil/syncbuf"
)

// freeBase finds a port p with p..p+n-1 and their CONTROLLER ports free.
func freeBase(t *testing.T, n int) int {
	for try := 0; try < 50; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if base+n+controllerPortOffset > 65535 {
			continue
		}
		free := true
		for i := range n {
			for _, p := range []int{base + i, base + i + controllerPortOffset} {
				l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
				if err != nil {
					free = false
					continue
				}
				l.Close()
			}
		}
		if free {
			return base
		}
	}
	t.Skip("no free port range")
	return 0
}

// --nodes 3 runs a three-node cluster in the process: clients see three
// brokers and a controller; SIGTERM stops them all.
func TestRunNodes(t *testing.T) {
	skipSignalTest(t)
	base := freeBase(t, 3)
	dir := t.TempDir()
	var out, errOut syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run([]string{"--nodes", "3", "--listen", fmt.Sprintf("127.0.0.1:%d", base), "--data-dir", dir, "--http", "", "--log-level", "error"}, &out, &errOut)
	}()
	for deadline := time.Now().Add(20 * time.Second); strings.Count(out.String(), "listening on") < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stdout %q stderr %q", out.String(), errOut.String())
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", base+1)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var md *kmsg.MetadataResponse
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r, err := cl.SeedBrokers()[0].Request(context.Background(), kmsg.NewPtrMetadataRequest())
		if err != nil {
			continue
		}
		if md = r.(*kmsg.MetadataResponse); len(md.Brokers) == 3 && md.ControllerID > 0 {
			break
		}
	}
	if md == nil || len(md.Brokers) != 3 || md.ControllerID <= 0 {
		t.Fatalf("metadata %+v", md)
	}
	for i, b := range md.Brokers {
		if b.NodeID != int32(i+1) || b.Port != int32(base+i) {
			t.Errorf("broker %+v, want node %d on port %d", b, i+1, base+i)
		}
	}
	stopRun(t, done)
}
