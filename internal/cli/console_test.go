package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafkit/kafkit/broker"
)

// lockedBuffer is written by the console command while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
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

// TestConsoleCommand: `kafkit console --read-only` serves the console for
// the cluster, refuses changes, and stops when its context ends;
// --username without the password in the environment is refused.
func TestConsoleCommand(t *testing.T) {
	addr := broker.NewTest(t).Addr()
	if r := run(t, addr, "", "console", "--listen", "127.0.0.1:0", "--username", "admin"); r.code == 0 || !strings.Contains(r.err, consolePasswordEnv) {
		t.Errorf("--username without a password: exit %d, %q", r.code, r.err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb lockedBuffer
	code := make(chan int, 1)
	go func() {
		code <- Run(ctx, []string{"--bootstrap-server", addr, "console", "--listen", "127.0.0.1:0", "--read-only"},
			IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	}()
	re := regexp.MustCompile(`on (http://\S+/)`)
	deadline := time.Now().Add(20 * time.Second)
	var m []string
	for m = re.FindStringSubmatch(out.String()); m == nil; m = re.FindStringSubmatch(out.String()) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no URL printed: %q %q", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get(m[1] + "topics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /topics: %s", resp.Status)
	}
	resp, err = http.PostForm(m[1]+"topics", url.Values{"name": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /topics on a read-only console: %s", resp.Status)
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit %d: %s", c, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("console did not stop")
	}
}
