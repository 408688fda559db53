package admin_test

import (
	"context"
	"fmt"
	"log"

	"github.com/kafkit/kafkit/admin"
)

// Example creates a topic, shows a group's lag and moves the group back to
// the start of the topic, as kafka-consumer-groups --reset-offsets
// --to-earliest --execute does.
func Example() {
	ctx := context.Background()
	adm, err := admin.New(ctx, admin.Config{BootstrapServers: []string{"127.0.0.1:9092"}})
	if err != nil {
		log.Fatal(err)
	}
	defer adm.Close()

	_, err = adm.CreateTopics(ctx, false, admin.NewTopic{Name: "orders", Partitions: 3, Configs: map[string]string{"retention.ms": "86400000"}})
	if err != nil {
		log.Fatal(err) // errors.Is(err, kerr.TopicAlreadyExists) when it exists
	}

	lag, err := adm.Lag(ctx, "billing")
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range lag.Partitions {
		fmt.Printf("%s-%d: committed %d, end %d, lag %d\n", p.Topic, p.Partition, p.CurrentOffset, p.LogEndOffset, p.Lag)
	}
	fmt.Println("total lag", lag.Total)

	partitions, err := adm.Partitions(ctx, "orders")
	if err != nil {
		log.Fatal(err)
	}
	// Fails with admin.ErrGroupActive while the group has members.
	plan, err := adm.ResetOffsets(ctx, "billing", admin.ResetSpec{Kind: admin.ResetToEarliest}, partitions, true)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range plan {
		fmt.Printf("%s-%d: %d -> %d\n", r.Topic, r.Partition, r.Current, r.Target)
	}
}
