package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/kafkit/kafkit"
)

// PartitionLag is one partition of a group, as kafka-consumer-groups
// --describe shows it.
type PartitionLag struct {
	kafkit.TopicPartition
	CurrentOffset int64 // the committed offset; -1 if none
	LogEndOffset  int64 // the high watermark; -1 if it could not be read
	Lag           int64 // LogEndOffset - CurrentOffset; -1 when either is unknown
	MemberID      string
	Host          string
	ClientID      string
}

// GroupLag is a group's lag per partition (sorted) and in total.
type GroupLag struct {
	Group      string
	State      string
	Partitions []PartitionLag
	Total      int64 // the sum of the known lags
}

// Lag returns group's lag on every partition it committed offsets for or
// has assigned to a member. Partitions whose end offset cannot be read are
// reported in the error, with LogEndOffset and Lag -1.
func (c *Client) Lag(ctx context.Context, group string) (GroupLag, error) {
	d, err := c.describeGroup(ctx, group)
	if err != nil {
		return GroupLag{}, err
	}
	committed, err := c.GroupOffsets(ctx, group)
	if err != nil {
		return GroupLag{}, err
	}
	owner := make(map[kafkit.TopicPartition]GroupMember)
	for _, m := range d.Members {
		for _, tp := range m.Assignment {
			owner[tp] = m
		}
	}
	tps := slices.Collect(maps.Keys(committed))
	for tp := range owner {
		if _, ok := committed[tp]; !ok {
			tps = append(tps, tp)
		}
	}
	slices.SortFunc(tps, compareTP)
	ends, endErr := c.ListOffsets(ctx, kafkit.OffsetLatest, tps...)
	gl := GroupLag{Group: group, State: d.State}
	for _, tp := range tps {
		pl := PartitionLag{TopicPartition: tp, CurrentOffset: -1, LogEndOffset: -1, Lag: -1}
		if off, ok := committed[tp]; ok {
			pl.CurrentOffset = off
		}
		if end, ok := ends[tp]; ok {
			pl.LogEndOffset = end.Offset
		}
		if pl.CurrentOffset >= 0 && pl.LogEndOffset >= 0 {
			pl.Lag = max(0, pl.LogEndOffset-pl.CurrentOffset)
			gl.Total += pl.Lag
		}
		if m, ok := owner[tp]; ok {
			pl.MemberID, pl.Host, pl.ClientID = m.MemberID, m.Host, m.ClientID
		}
		gl.Partitions = append(gl.Partitions, pl)
	}
	return gl, endErr
}

// ResetKind is where kafka-consumer-groups --reset-offsets moves offsets.
type ResetKind int8

const (
	ResetToEarliest ResetKind = iota + 1 // --to-earliest
	ResetToLatest                        // --to-latest
	ResetToDatetime                      // --to-datetime: the first offset at or after Time (latest if none)
	ResetToOffset                        // --to-offset: Offset
	ResetShiftBy                         // --shift-by: the committed offset + Offset (may be negative)
)

// ResetSpec is one offset reset. Targets outside a partition's
// [earliest, latest] range are clamped to it, as Kafka's tool does.
type ResetSpec struct {
	Kind   ResetKind
	Time   time.Time // for ResetToDatetime
	Offset int64     // for ResetToOffset and ResetShiftBy
}

// OffsetReset is one partition's planned or applied reset.
type OffsetReset struct {
	kafkit.TopicPartition
	Current int64 // the committed offset before; -1 if none
	Target  int64
}

// ResetOffsets computes new committed offsets of group for partitions and,
// with execute, commits them; without it is the dry run
// kafka-consumer-groups does by default. Either way the group must have no
// members (ErrGroupActive). The plan is returned sorted by partition.
func (c *Client) ResetOffsets(ctx context.Context, group string, spec ResetSpec, partitions []kafkit.TopicPartition, execute bool) ([]OffsetReset, error) {
	if spec.Kind < ResetToEarliest || spec.Kind > ResetShiftBy {
		return nil, fmt.Errorf("%w: no target (to earliest, latest, datetime, offset or shift by)", ErrInvalidResetSpec)
	}
	if err := c.requireInactive(ctx, group); err != nil {
		return nil, err
	}
	committed, err := c.GroupOffsets(ctx, group, partitions...)
	if err != nil {
		return nil, err
	}
	plan, err := c.resetPlan(ctx, group, spec, partitions, committed)
	if err != nil || !execute {
		return plan, err
	}
	return plan, c.AlterGroupOffsets(ctx, group, planOffsets(plan))
}

// resetPlan computes the new offsets of partitions from their current ones
// (a group's committed offsets or a share group's start offsets), each
// within the log's bounds.
func (c *Client) resetPlan(ctx context.Context, group string, spec ResetSpec, partitions []kafkit.TopicPartition, current map[kafkit.TopicPartition]int64) ([]OffsetReset, error) {
	earliest, err := c.ListOffsets(ctx, kafkit.OffsetEarliest, partitions...)
	if err != nil {
		return nil, err
	}
	latest, err := c.ListOffsets(ctx, kafkit.OffsetLatest, partitions...)
	if err != nil {
		return nil, err
	}
	var byTime map[kafkit.TopicPartition]ListedOffset
	if spec.Kind == ResetToDatetime {
		if byTime, err = c.ListOffsets(ctx, Timestamp(spec.Time), partitions...); err != nil {
			return nil, err
		}
	}
	var plan []OffsetReset
	var errs []error
	for _, tp := range slices.SortedFunc(slices.Values(partitions), compareTP) {
		lo, hi := earliest[tp].Offset, latest[tp].Offset
		r := OffsetReset{TopicPartition: tp, Current: -1}
		cur, hasCur := current[tp]
		if hasCur {
			r.Current = cur
		}
		switch spec.Kind {
		case ResetToEarliest:
			r.Target = lo
		case ResetToLatest:
			r.Target = hi
		case ResetToDatetime:
			r.Target = byTime[tp].Offset
			if r.Target < 0 {
				r.Target = hi
			}
		case ResetToOffset:
			r.Target = spec.Offset
		case ResetShiftBy:
			if !hasCur {
				errs = append(errs, fmt.Errorf("%w: group %s has no offset on %s to shift", ErrInvalidResetSpec, group, partitionName(tp)))
				continue
			}
			r.Target = cur + spec.Offset
		}
		r.Target = min(max(r.Target, lo), hi)
		plan = append(plan, r)
	}
	return plan, errors.Join(errs...)
}

func planOffsets(plan []OffsetReset) map[kafkit.TopicPartition]int64 {
	offsets := make(map[kafkit.TopicPartition]int64, len(plan))
	for _, r := range plan {
		offsets[r.TopicPartition] = r.Target
	}
	return offsets
}
