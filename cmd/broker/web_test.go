package main

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServesConsoleAndMetrics: kafkit.http.listen (like --http) serves the console and /metrics and
// prints their URL; the broker's own Prometheus names are there.
func TestServesConsoleAndMetrics(t *testing.T) {
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run([]string{"--listen", "127.0.0.1:0", "--in-memory", "--override", "kafkit.http.listen=127.0.0.1:0"}, &out, &errOut)
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
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("did not stop on SIGTERM")
	}
}
