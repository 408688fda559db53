package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// brokerBinDir holds the binary brokerBinary built; TestMain removes it
// (each run's build is 35 MB, and runs used to leave them in the temp dir).
var brokerBinDir string

// brokerBinary builds cmd/broker once per test binary run;
// KAFKIT_BROKER_BIN names a prebuilt one instead (an A/B of two builds of
// a benchmark runs the same test binary against each).
var brokerBinary = sync.OnceValues(func() (string, error) {
	if bin := os.Getenv("KAFKIT_BROKER_BIN"); bin != "" {
		return bin, nil
	}
	dir, err := os.MkdirTemp("", "kafkit-broker-bin")
	if err != nil {
		return "", err
	}
	brokerBinDir = dir
	bin := filepath.Join(dir, "broker")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/kafkit/kafkit/cmd/broker").CombinedOutput()
	if err != nil {
		return "", &buildError{out: string(out), err: err}
	}
	return bin, nil
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// brokerProcess is a broker running as a child process (cmd/broker, or kfake
// for the benchmarks), so a test can kill it with SIGKILL as a crash would and
// read its CPU time apart from the test's own.
type brokerProcess struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

// startBrokerProcess runs cmd/broker on dataDir with extra flags and waits
// until it prints its address. The process is killed at cleanup if still
// running.
func startBrokerProcess(t testing.TB, dataDir string, args ...string) *brokerProcess {
	t.Helper()
	bin, err := brokerBinary()
	if err != nil {
		t.Fatalf("building cmd/broker: %v", err)
	}
	args = append([]string{"--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn", "--http", ""}, args...)
	return startProcess(t, exec.Command(bin, args...))
}

// startProcess starts cmd and waits until it prints "... listening on
// <addr>" on stdout. The process is killed at cleanup if still running.
func startProcess(t testing.TB, cmd *exec.Cmd) *brokerProcess {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &brokerProcess{cmd: cmd, done: make(chan struct{})}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), " listening on "); ok {
				select {
				case addrCh <- strings.Fields(rest)[0]:
				default:
				}
			}
		}
	}()
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case p.addr = <-addrCh:
	case <-p.done:
		t.Fatal("broker process exited before listening")
	case <-time.After(30 * time.Second):
		t.Fatal("broker process did not print its address within 30s")
	}
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *brokerProcess) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM (a clean shutdown) and waits.
func (p *brokerProcess) stop(t testing.TB) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("broker did not stop within 30s of SIGTERM")
	}
}
