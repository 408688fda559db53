package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os/signal"
	"syscall"

	"github.com/kafkit/kafkit/consumer"
)

// A group member that processes every record at least once: with
// enable.auto.commit (the default), offsets are committed only for records
// that earlier Polls returned, so a crash re-delivers unprocessed records.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := consumer.New(ctx, consumer.Config{
		BootstrapServers: []string{"localhost:9092"},
		GroupID:          "orders-processor",
		AutoOffsetReset:  consumer.OffsetResetEarliest,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(context.Background()) // commits, runs OnRevoked, leaves the group
	if err := c.Subscribe("orders"); err != nil {
		log.Fatal(err)
	}
	for {
		records, err := c.Poll(ctx)
		if errors.Is(err, context.Canceled) {
			return
		}
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range records {
			fmt.Printf("%s[%d]@%d: %s\n", r.Topic, r.Partition, r.Offset, r.Value)
		}
	}
}
