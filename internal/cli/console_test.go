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

// startConsole runs `kafkit console` with args until the returned stop
// function, which checks that it exited cleanly; it returns the URL printed.
func startConsole(t *testing.T, args ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb lockedBuffer
	code := make(chan int, 1)
	go func() {
		code <- Run(ctx, args, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	}()
	stop := func() {
		t.Helper()
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
	re := regexp.MustCompile(`on (http://\S+/)`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1], stop
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("no URL printed: %q %q", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// status returns a function taking http.Get's results and giving the
// response's status (failing the test on an error).
func status(t *testing.T) func(*http.Response, error) int {
	return func(resp *http.Response, err error) int {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
}

// TestConsoleCommand: `kafkit console --read-only` serves the console for
// the cluster, refuses changes, and stops when its context ends;
// --username without the password in the environment is refused; --cluster
// adds clusters, each under /clusters/NAME/.
func TestConsoleCommand(t *testing.T) {
	addr := broker.NewTest(t).Addr()
	if r := run(t, addr, "", "console", "--listen", "127.0.0.1:0", "--username", "admin"); r.code == 0 || !strings.Contains(r.err, consolePasswordEnv) {
		t.Errorf("--username without a password: exit %d, %q", r.code, r.err)
	}
	base, stop := startConsole(t, "--bootstrap-server", addr, "console", "--listen", "127.0.0.1:0", "--read-only")
	if s := status(t)(http.Get(base + "topics")); s != http.StatusOK {
		t.Errorf("GET /topics: %d", s)
	}
	if s := status(t)(http.PostForm(base+"topics", url.Values{"name": {"x"}})); s != http.StatusForbidden {
		t.Errorf("POST /topics on a read-only console: %d", s)
	}
	stop()

	other := broker.NewTest(t).Addr()
	base, stop = startConsole(t, "--bootstrap-server", addr, "console", "--listen", "127.0.0.1:0", "--cluster", "other="+other)
	defer stop()
	for _, path := range []string{"", "clusters/default/topics", "clusters/other/groups"} {
		if s := status(t)(http.Get(base + path)); s != http.StatusOK {
			t.Errorf("GET /%s: %d", path, s)
		}
	}
	if r := run(t, addr, "", "console", "--listen", "127.0.0.1:0", "--cluster", "nameonly"); r.code == 0 || !strings.Contains(r.err, "NAME=HOST:PORT") {
		t.Errorf("--cluster without an address: exit %d, %q", r.code, r.err)
	}
}
