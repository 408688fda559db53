package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListedOffset is a partition's offset for a ListOffsets query.
type ListedOffset struct {
	Offset      int64 // -1 when no record has a timestamp at or after the one asked
	Timestamp   int64 // the record's timestamp (ms) for timestamp queries, else -1
	LeaderEpoch int32
}

// Timestamp is the ListOffsets spec for the first record at or after t.
func Timestamp(t time.Time) int64 { return t.UnixMilli() }

// ListOffsets asks each partition's leader for one offset: spec is
// kafkit.OffsetEarliest (the log start), kafkit.OffsetLatest (the high
// watermark) or a timestamp in milliseconds (the first offset whose
// timestamp is at or after it; see Timestamp). A partition that fails is
// left out and its error joined into the error.
func (c *Client) ListOffsets(ctx context.Context, spec int64, partitions ...kafkit.TopicPartition) (map[kafkit.TopicPartition]ListedOffset, error) {
	return perLeader(ctx, c, "list offsets", partitions, func(ctx context.Context, leader int32, tps []kafkit.TopicPartition) (map[kafkit.TopicPartition]ListedOffset, map[kafkit.TopicPartition]error, error) {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		for t, ps := range client.PartitionsByTopic(tps) {
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = t
			for _, p := range ps {
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Partition, rp.Timestamp = p, spec
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		kresp, err := c.cl.RequestBroker(ctx, leader, req)
		if err != nil {
			return nil, nil, err
		}
		out := make(map[kafkit.TopicPartition]ListedOffset)
		failed := make(map[kafkit.TopicPartition]error)
		for _, rt := range kresp.(*kmsg.ListOffsetsResponse).Topics {
			for _, rp := range rt.Partitions {
				tp := kafkit.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
				if err := kafkaErr("list offsets", partitionName(tp), rp.ErrorCode, nil); err != nil {
					failed[tp] = err
					continue
				}
				out[tp] = ListedOffset{Offset: rp.Offset, Timestamp: rp.Timestamp, LeaderEpoch: rp.LeaderEpoch}
			}
		}
		return out, failed, nil
	})
}

// DeleteRecords deletes the records of each partition before the given
// offset (kafkit.OffsetLatest: every record, up to the high watermark) and
// returns the partitions' new log start offsets (low watermarks).
func (c *Client) DeleteRecords(ctx context.Context, before map[kafkit.TopicPartition]int64) (map[kafkit.TopicPartition]int64, error) {
	tps := slices.SortedFunc(maps.Keys(before), compareTP)
	return perLeader(ctx, c, "delete records", tps, func(ctx context.Context, leader int32, tps []kafkit.TopicPartition) (map[kafkit.TopicPartition]int64, map[kafkit.TopicPartition]error, error) {
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.TimeoutMillis = c.timeoutMillis()
		for t, ps := range client.PartitionsByTopic(tps) {
			rt := kmsg.NewDeleteRecordsRequestTopic()
			rt.Topic = t
			for _, p := range ps {
				rp := kmsg.NewDeleteRecordsRequestTopicPartition()
				rp.Partition, rp.Offset = p, before[kafkit.TopicPartition{Topic: t, Partition: p}]
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		kresp, err := c.cl.RequestBroker(ctx, leader, req)
		if err != nil {
			return nil, nil, err
		}
		out := make(map[kafkit.TopicPartition]int64)
		failed := make(map[kafkit.TopicPartition]error)
		for _, rt := range kresp.(*kmsg.DeleteRecordsResponse).Topics {
			for _, rp := range rt.Partitions {
				tp := kafkit.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
				if err := kafkaErr("delete records", partitionName(tp), rp.ErrorCode, nil); err != nil {
					failed[tp] = err
					continue
				}
				out[tp] = rp.LowWatermark
			}
		}
		return out, failed, nil
	})
}

// perLeader groups partitions by leader and calls fn once per leader, in
// parallel, retrying the partitions that failed retriably (a leader that
// moved, a connection that dropped) with fresh metadata until ctx ends. fn
// returns per-partition results and failures, or an error for the whole
// request. The error joins the partitions that failed in the end.
func perLeader[T any](ctx context.Context, c *Client, op string, tps []kafkit.TopicPartition,
	fn func(ctx context.Context, leader int32, tps []kafkit.TopicPartition) (map[kafkit.TopicPartition]T, map[kafkit.TopicPartition]error, error),
) (map[kafkit.TopicPartition]T, error) {
	pending := tps
	out := make(map[kafkit.TopicPartition]T, len(tps))
	final := make(map[kafkit.TopicPartition]error)
	err := c.retry(ctx, func() error {
		for _, tp := range pending {
			delete(final, tp)
		}
		leaders, unknown, err := c.leaders(ctx, pending)
		if err != nil {
			return err
		}
		maps.Copy(final, unknown)
		type result struct {
			tps    []kafkit.TopicPartition
			ok     map[kafkit.TopicPartition]T
			failed map[kafkit.TopicPartition]error
			err    error
		}
		results := make(chan result, len(leaders))
		for leader, tps := range leaders {
			go func() {
				ok, failed, err := fn(ctx, leader, tps)
				results <- result{tps, ok, failed, err}
			}()
		}
		var retry []kafkit.TopicPartition
		var lastErr error
		for range leaders {
			r := <-results
			if r.err != nil {
				for _, tp := range r.tps {
					final[tp] = fmt.Errorf("%s %s: %w", op, partitionName(tp), r.err)
				}
			}
			maps.Copy(out, r.ok)
			maps.Copy(final, r.failed)
			for _, tp := range r.tps {
				if err := final[tp]; err != nil && client.IsRetriable(err) {
					retry, lastErr = append(retry, tp), err
				}
			}
		}
		pending = retry
		if len(retry) > 0 {
			c.cl.InvalidateMetadata(client.TopicsOf(retry)...)
			return lastErr
		}
		return nil
	})
	if ctx.Err() != nil && err != nil {
		return out, err
	}
	var errs []error
	for _, tp := range slices.SortedFunc(maps.Keys(final), compareTP) {
		errs = append(errs, final[tp])
	}
	return out, errors.Join(errs...)
}

// leaders maps partitions to their leaders; partitions whose topic or
// partition is unknown or leaderless come back as errors.
func (c *Client) leaders(ctx context.Context, tps []kafkit.TopicPartition) (map[int32][]kafkit.TopicPartition, map[kafkit.TopicPartition]error, error) {
	md, err := c.cl.Metadata(ctx, client.TopicsOf(tps)...)
	if err != nil {
		return nil, nil, err
	}
	leaders := make(map[int32][]kafkit.TopicPartition)
	failed := make(map[kafkit.TopicPartition]error)
	for _, tp := range tps {
		t := md.Topics[tp.Topic]
		switch {
		case t.Err != nil:
			failed[tp] = topicErr("find leader of", partitionName(tp), t.Err)
		case tp.Partition < 0 || int(tp.Partition) >= len(t.Partitions) || t.Partitions[tp.Partition].ID != tp.Partition:
			failed[tp] = topicErr("find leader of", partitionName(tp), kerr.UnknownTopicOrPartition)
		case t.Partitions[tp.Partition].Leader < 0:
			failed[tp] = topicErr("find leader of", partitionName(tp), kerr.LeaderNotAvailable)
		default:
			l := t.Partitions[tp.Partition].Leader
			leaders[l] = append(leaders[l], tp)
		}
	}
	return leaders, failed, nil
}

// Partitions returns every partition of the named topics, from fresh
// metadata; an unknown topic is an error.
func (c *Client) Partitions(ctx context.Context, topics ...string) ([]kafkit.TopicPartition, error) {
	ds, err := c.DescribeTopics(ctx, topics...)
	if err != nil {
		return nil, err
	}
	var out []kafkit.TopicPartition
	for _, d := range ds {
		for _, p := range d.Partitions {
			out = append(out, kafkit.TopicPartition{Topic: d.Name, Partition: p.Partition})
		}
	}
	return out, nil
}

func partitionName(tp kafkit.TopicPartition) string {
	return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition)
}

func compareTP(a, b kafkit.TopicPartition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition - b.Partition)
}
