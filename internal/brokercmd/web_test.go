package brokercmd

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit/internal/testutil/syncbuf"
)

// TestServesConsoleAndMetrics: kafkit.http.listen (like --http) serves the console and /metrics and
// prints their URL; the broker's own Prometheus names are there.
func TestServesConsoleAndMetrics(t *testing.T) {
	skipSignalTest(t)
	var out, errOut syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run([]string{"--listen", "127.0.0.1:0", "--in-memory", "--override", "kafkit.http.listen=127.0.0.1:0"}, &out, &errOut)
	}()
	urlRE := regexp.MustCompile(`console on (http://127\.0\.0\.1:\d+/)`)
	deadline := time.Now().Add(20 * time.Second)
	var m []string
	for m = urlRE.FindStringSubmatch(out.String()); m == nil; m = urlRE.FindStringSubmatch(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no console URL printed; stdout %q stderr %q", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	get := func(path string) string {
		resp, err := http.Get(m[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
		}
		return string(body)
	}
	if body := get("metrics"); !strings.Contains(body, "kafka_server_brokertopicmetrics_messagesin_total") {
		t.Errorf("/metrics lacks the broker's metrics:\n%.2000s", body)
	}
	if body := get(""); !strings.Contains(body, "Cluster") {
		t.Errorf("console overview:\n%.2000s", body)
	}
	stopRun(t, done)
}

// stopRun sends the test process SIGTERM, which run handles, and waits for
// run's result on done.
func stopRun(t *testing.T, done <-chan error) {
	t.Helper()
	stopSelf(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("did not stop on SIGTERM")
	}
}

// TestBusyDefaultHTTPPortOnlyWarns: with the default address taken the
// broker still starts (and says so), while an address asked for that is
// taken stops start-up.
func TestBusyDefaultHTTPPortOnlyWarns(t *testing.T) {
	skipSignalTest(t)
	ln, err := net.Listen("tcp", defaultHTTPListen)
	if err != nil {
		t.Skipf("%s is taken by something else already: %v", defaultHTTPListen, err)
	}
	defer ln.Close()
	var out, errOut bytes.Buffer
	if err := Run([]string{"--listen", "127.0.0.1:0", "--in-memory", "--http", defaultHTTPListen}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "--http") {
		t.Errorf("an explicit busy --http: %v", err)
	}
	var sout, serr syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- Run([]string{"--listen", "127.0.0.1:0", "--in-memory"}, &sout, &serr) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(serr.String(), "no web console") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning; stdout %q stderr %q", sout.String(), serr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for !strings.Contains(sout.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("broker did not start; stdout %q", sout.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopRun(t, done)
}
