package processor_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os/signal"
	"syscall"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/consumer/processor"
)

type payment struct {
	ID     string `json:"id"`
	Amount int64  `json:"amount"`
}

var errDeclined = errors.New("declined")

// A service handling payments, 16 at a time with each account's (key's)
// payments in order; failures are retried, and payments that cannot be
// decoded or are declined go to "payments.DLT". Interrupting it finishes
// the running handlers, commits and leaves the group.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	r, err := processor.New(processor.Config{
		Consumer: consumer.Config{
			BootstrapServers: []string{"localhost:9092"},
			GroupID:          "payments-svc",
			AutoOffsetReset:  consumer.OffsetResetEarliest,
		},
		Topics:      []string{"payments"},
		Concurrency: 16,
		Ordering:    processor.OrderKey,
		Handler: processor.Typed(kafkit.StringSerde{}, kafkit.JSONSerde[payment]{},
			func(ctx context.Context, p consumer.TypedRecord[string, payment]) error {
				if p.Value.Amount <= 0 {
					return processor.Permanent(errDeclined) // no retries: straight to the DLT
				}
				fmt.Printf("account %s paid %d (%s)\n", p.Key, p.Value.Amount, p.Value.ID)
				return nil // an error here would be retried
			}),
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := r.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
