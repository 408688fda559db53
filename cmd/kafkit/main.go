// Command kafkit manages and uses a Kafka cluster from the command line:
// topics, produce, consume, consumer groups, configs and the cluster. See
// `kafkit --help` and internal/cli, where the commands live. Run through a
// link named as one of Kafka's tools (kafkit tools link DIR), it behaves as
// that tool: kafka-topics.sh, kafka-console-consumer.sh, ...
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kafkit/kafkit/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
