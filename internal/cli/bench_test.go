package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/kafkit/kafkit/broker"
)

// BenchmarkProduceConsume pipes 100k lines through `kafkit produce` and
// reads them back with `kafkit consume`, in-process against our broker.
func BenchmarkProduceConsume(b *testing.B) {
	const lines = 100_000
	addr := broker.NewTest(b).Addr()
	var in strings.Builder
	for i := range lines {
		fmt.Fprintf(&in, "line-%08d-%s\n", i, strings.Repeat("x", 80))
	}
	input := in.String()
	b.SetBytes(int64(len(input)))
	b.ResetTimer()
	for i := range b.N {
		topic := fmt.Sprintf("bench-%d", i)
		for _, args := range [][]string{
			{"topics", "create", "--topic", topic, "--partitions", "3"},
			{"produce", "--topic", topic},
			{"consume", "--topic", topic, "--from-beginning", "--max-messages", fmt.Sprint(lines)},
		} {
			var out, errb bytes.Buffer
			if code := Run(context.Background(), append([]string{"--bootstrap-server", addr}, args...), IO{In: strings.NewReader(input), Out: &out, Err: &errb}); code != 0 {
				b.Fatalf("%v: %s", args, errb.String())
			}
		}
	}
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "records/s")
}
