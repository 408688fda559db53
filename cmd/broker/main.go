// Command broker runs kafkit's Kafka-compatible broker.
//
//	go run ./cmd/broker                        # 127.0.0.1:9092, data in $TMPDIR/kafkit-logs
//	go run ./cmd/broker --config server.properties --override log.retention.hours=1
//	go run ./cmd/broker --in-memory --listen 127.0.0.1:0
//	go run ./cmd/broker --http ""              # no web console or /metrics
//	go run ./cmd/broker --nodes 3              # a local three-node cluster: 9092-9094
//	go run ./cmd/broker --config node1.properties   # a node of a cluster (process.roles, controller.quorum.voters)
//
// The web console and Prometheus metrics (/metrics) are served on
// 127.0.0.1:8080 unless --http (or the key kafkit.http.listen) says otherwise.
// The flags and their handling live in internal/brokercmd.
package main

import (
	"fmt"
	"os"

	"github.com/kafkit/kafkit/internal/brokercmd"
)

func main() {
	if err := brokercmd.Run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		os.Exit(1)
	}
}
