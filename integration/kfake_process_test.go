package integration

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// kfakeProcessEnv makes the test binary serve a one-broker kfake cluster,
// seeded with the named topic of benchPartitions partitions, instead of
// running tests: the broker benchmark runs kfake as a child process just as it
// runs cmd/broker, so neither broker shares the load client's heap, garbage
// collector or CPU accounting.
const kfakeProcessEnv = "KAFKIT_SERVE_KFAKE"

// serveKfake runs kfake until SIGTERM/SIGINT or until its parent closes
// stdin (which also happens when the parent dies).
func serveKfake(topic string) int {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(benchPartitions, topic))
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		return 1
	}
	defer c.Close()
	fmt.Println("kfake listening on", c.ListenAddrs()[0])
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		stop <- syscall.SIGTERM
	}()
	<-stop
	return 0
}

// startKfakeProcess runs kfake in a child copy of this test binary.
func startKfakeProcess(tb testing.TB, topic string) *brokerProcess {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), kfakeProcessEnv+"="+topic)
	if _, err := cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	return startProcess(tb, cmd)
}
