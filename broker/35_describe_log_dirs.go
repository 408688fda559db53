package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeLogDirs: v0-4 (v2 flexible, v3 top-level error, v4 total and
// usable bytes). One log directory, log.dirs; a null topic list means all.
var describeLogDirsVersions = versions{0, 4}

func (b *Broker) handleDescribeLogDirs(rc *reqCtx, req *kmsg.DescribeLogDirsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.dataDirDescription()
	dir.TotalBytes, dir.UsableBytes = -1, -1
	if !b.cfg.InMemory {
		if total, usable, err := diskSpace(b.cfg.DataDir); err == nil {
			dir.TotalBytes, dir.UsableBytes = total, usable
		}
	}
	add := func(t *topic, parts []int32) {
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = t.name
		for _, i := range parts {
			if i < 0 || int(i) >= len(t.partitions) {
				continue
			}
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition, dp.Size = i, t.partitions[i].log.Size()
			dt.Partitions = append(dt.Partitions, dp)
		}
		dir.Topics = append(dir.Topics, dt)
	}
	if req.Topics == nil {
		for _, t := range b.topics.all() {
			all := make([]int32, len(t.partitions))
			for i := range all {
				all[i] = int32(i)
			}
			add(t, all)
		}
	} else {
		for _, rt := range req.Topics {
			if t := b.topics.get(rt.Topic); t != nil {
				add(t, rt.Partitions)
			}
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp, nil
}
