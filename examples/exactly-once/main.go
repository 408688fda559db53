// Command exactly-once is a consume-transform-produce service with
// exactly-once semantics: it reads a topic as a consumer group member
// (isolation.level=read_committed), upper-cases each value, and writes the
// results and the consumed offsets in one transaction, so each input yields
// its output exactly once even across crashes and restarts:
//
//	go run ./examples/exactly-once -bootstrap localhost:9092 -in orders -out orders-upper
//
// The broker must support transactions (Apache Kafka, or franz-go's kfake,
// which the test uses).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/producer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "exactly-once:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) (err error) {
	fs := flag.NewFlagSet("exactly-once", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap", "localhost:9092", "bootstrap.servers, comma-separated")
	in := fs.String("in", "orders", "topic to read")
	outTopic := fs.String("out", "orders-upper", "topic to write")
	group := fs.String("group", "uppercaser", "group.id")
	txnID := fs.String("transactional-id", "uppercaser-1", "transactional.id: one per instance, stable across restarts")
	count := fs.Int("count", 0, "stop after this many records (0: until interrupted)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	servers := strings.Split(*bootstrap, ",")
	closeCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	}

	// The producer's InitTransactions fences any earlier instance with
	// the same transactional.id and finishes its open transaction.
	p, err := producer.New(producer.Config{BootstrapServers: servers, TransactionalID: *txnID})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := closeCtx()
		defer cancel()
		err = errors.Join(err, p.Close(cctx))
	}()
	if err := p.InitTransactions(ctx); err != nil {
		return err
	}

	// Offsets are committed by the transaction, never by the consumer;
	// read_committed hides aborted outputs of upstream transactions.
	c, err := consumer.New(ctx, consumer.Config{
		BootstrapServers:  servers,
		GroupID:           *group,
		IsolationLevel:    consumer.ReadCommitted,
		DisableAutoCommit: true,
		AutoOffsetReset:   consumer.OffsetResetEarliest,
	})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := closeCtx()
		defer cancel()
		err = errors.Join(err, c.Close(cctx))
	}()
	if err := c.Subscribe(*in); err != nil {
		return err
	}

	for done := 0; *count == 0 || done < *count; {
		records, err := c.Poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		// Each Poll's records are one transaction, finished before the
		// next Poll, so a rebalance (which runs inside Poll) never finds
		// one open.
		if err := transform(ctx, p, c.GroupMetadata(), *outTopic, records); err != nil {
			fmt.Fprintln(out, "transaction aborted:", err)
			if err := rewind(ctx, c, records); err != nil {
				return err
			}
			continue
		}
		done += len(records)
		fmt.Fprintf(out, "committed %d records (%d in all)\n", len(records), done)
	}
	return nil
}

// transform writes the upper-cased records and their offsets in one
// transaction, aborting it on any failure.
func transform(ctx context.Context, p *producer.Producer, member kafkit.GroupMetadata, topic string, records []*kafkit.Record) error {
	if err := p.BeginTransaction(); err != nil {
		return err
	}
	next := make(map[kafkit.TopicPartition]int64)
	for _, r := range records {
		o := &kafkit.Record{Topic: topic, Partition: kafkit.AnyPartition, Key: r.Key, Value: bytes.ToUpper(r.Value), Headers: r.Headers}
		// A failed record fails CommitTransaction, so the callback need
		// not report it.
		if err := p.Send(ctx, o, nil); err != nil {
			return errors.Join(err, p.AbortTransaction(ctx))
		}
		next[kafkit.TopicPartition{Topic: r.Topic, Partition: r.Partition}] = r.Offset + 1
	}
	// The member's generation lets the group coordinator fence a consumer
	// that was rebalanced away (KIP-447); the transactional.id fences
	// zombie producers.
	if err := p.SendOffsetsToTransaction(ctx, next, member); err != nil {
		return errors.Join(err, p.AbortTransaction(ctx))
	}
	if err := p.CommitTransaction(ctx); err != nil {
		return errors.Join(err, p.AbortTransaction(ctx))
	}
	return nil
}

// rewind moves the consumer back to the committed offsets of the records'
// partitions, so an aborted transaction's input is read again.
func rewind(ctx context.Context, c *consumer.Consumer, records []*kafkit.Record) error {
	var tps []kafkit.TopicPartition
	seen := make(map[kafkit.TopicPartition]bool)
	for _, r := range records {
		tp := kafkit.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if !seen[tp] {
			seen[tp] = true
			tps = append(tps, tp)
		}
	}
	committed, err := c.Committed(ctx, tps...)
	if err != nil {
		return err
	}
	for _, tp := range tps {
		if o, ok := committed[tp]; ok && o >= 0 {
			err = c.Seek(ctx, tp, o)
		} else {
			err = c.SeekToBeginning(ctx, tp)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
