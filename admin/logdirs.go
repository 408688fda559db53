package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LogDir is one log directory of one broker, as DescribeLogDirs reports
// it (kafka-log-dirs.sh --describe).
type LogDir struct {
	Broker int32
	Dir    string // the directory's path
	// Err is the directory's error (KAFKA_STORAGE_ERROR: it is offline),
	// nil if none.
	Err error
	// TotalBytes and UsableBytes are the size and free space of the
	// directory's volume; -1 when the broker does not say (before
	// DescribeLogDirs v4, or an in-memory broker).
	TotalBytes, UsableBytes int64
	Replicas                map[kafkit.TopicPartition]ReplicaInfo
}

// ReplicaInfo is one partition's replica in a log directory.
type ReplicaInfo struct {
	Size int64 // bytes of its log segments
	// OffsetLag is how far its log end offset is behind the high watermark
	// (behind the current replica's log end, for a future replica).
	OffsetLag int64
	// IsFuture marks a replica being moved into this directory, which will
	// replace the current one.
	IsFuture bool
}

// DescribeLogDirs asks brokers (every broker of the cluster when brokers
// is empty) for their log directories and the size of each partition's
// replica in them: of the given partitions, or of every partition when
// none are given. The result is sorted by broker, then directory. A broker
// that fails is left out and its error joined into the error.
func (c *Client) DescribeLogDirs(ctx context.Context, brokers []int32, partitions ...kafkit.TopicPartition) ([]LogDir, error) {
	if len(brokers) == 0 {
		md, err := c.metadata(ctx)
		if err != nil {
			return nil, err
		}
		brokers = slices.Collect(maps.Keys(md.Brokers))
	}
	req := kmsg.NewPtrDescribeLogDirsRequest()
	for t, ps := range client.PartitionsByTopic(partitions) {
		rt := kmsg.NewDescribeLogDirsRequestTopic()
		rt.Topic, rt.Partitions = t, ps
		req.Topics = append(req.Topics, rt)
	}
	var out []LogDir
	var errs []error
	for _, id := range slices.Sorted(slices.Values(brokers)) {
		var dirs []LogDir
		err := c.retry(ctx, func() error {
			kresp, err := c.cl.RequestBroker(ctx, id, req)
			if err != nil {
				return fmt.Errorf("describe log dirs of broker %d: %w", id, err)
			}
			resp := kresp.(*kmsg.DescribeLogDirsResponse)
			if err := kafkaErr("describe log dirs of", fmt.Sprintf("broker %d", id), resp.ErrorCode, nil); err != nil {
				return err
			}
			dirs = logDirs(id, resp)
			return nil
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, dirs...)
	}
	return out, errors.Join(errs...)
}

// logDirs reads one broker's answer.
func logDirs(broker int32, resp *kmsg.DescribeLogDirsResponse) []LogDir {
	var dirs []LogDir
	for _, d := range resp.Dirs {
		ld := LogDir{
			Broker: broker, Dir: d.Dir,
			Err:        kafkaErr("log dir", d.Dir, d.ErrorCode, nil),
			TotalBytes: d.TotalBytes, UsableBytes: d.UsableBytes,
			Replicas: make(map[kafkit.TopicPartition]ReplicaInfo),
		}
		if resp.Version < 4 {
			// Absent fields decode as 0, which would read as a full volume.
			ld.TotalBytes, ld.UsableBytes = -1, -1
		}
		for _, t := range d.Topics {
			for _, p := range t.Partitions {
				ld.Replicas[kafkit.TopicPartition{Topic: t.Topic, Partition: p.Partition}] = ReplicaInfo{Size: p.Size, OffsetLag: p.OffsetLag, IsFuture: p.IsFuture}
			}
		}
		dirs = append(dirs, ld)
	}
	slices.SortFunc(dirs, func(a, b LogDir) int { return cmp.Compare(a.Dir, b.Dir) })
	return dirs
}
