package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// groupConfigs holds the per-group configs (KIP-848/KIP-932's GROUP
// config resource) set through (Incremental)AlterConfigs, persisted in
// <log.dirs>/group-configs.json as the dynamic broker configs are. On a
// cluster they are the metadata image's (Config records of resource type
// GROUP, as KRaft keeps them), changed through the controller, so that
// every partition leader serving a share group reads the same values.
type groupConfigs struct {
	b      *Broker
	mu     sync.Mutex                   // guards values and the file
	values map[string]map[string]string // group -> key -> value
}

const groupConfigsFile = "group-configs.json"

// groupProp is one group config key: its broker-level default and check.
type groupProp struct {
	key, doc string
	typ      propType
	// def is the value when the group does not set it: the broker's.
	def func(c *Config) string
	// check validates a value against the broker's bounds.
	check func(c *Config, v string) error
}

// boundedBy checks a value against the broker's min and max keys, as
// Kafka's GroupConfig does.
func boundedBy(min, max func(c *Config) int64) func(*Config, string) error {
	return func(c *Config, v string) error { _, err := parseInt(v, min(c), max(c)); return err }
}

func brokerInt(f func(c *Config) int64) func(c *Config) string {
	return func(c *Config) string { return strconv.FormatInt(f(c), 10) }
}

// groupProps are Kafka 4.2's share group configs (GroupConfig.java).
var groupProps = []groupProp{
	{key: "share.auto.offset.reset", typ: typeString, doc: "Where a share group starts on a partition it has no state for: latest, earliest or by_duration:<ISO-8601 duration>.",
		def: func(*Config) string { return "latest" }, check: func(_ *Config, v string) error { return checkShareAutoOffsetReset(v) }},
	{key: "share.record.lock.duration.ms", typ: typeInt, doc: "The group's acquisition lock duration.",
		def:   brokerInt(func(c *Config) int64 { return c.ShareRecordLockDurationMs }),
		check: boundedBy(func(c *Config) int64 { return c.ShareMinRecordLockDurationMs }, func(c *Config) int64 { return c.ShareMaxRecordLockDurationMs })},
	{key: "share.delivery.count.limit", typ: typeInt, doc: "The group's delivery count limit.",
		def:   brokerInt(func(c *Config) int64 { return c.ShareDeliveryCountLimit }),
		check: boundedBy(func(*Config) int64 { return 2 }, func(*Config) int64 { return 10 })},
	{key: "share.heartbeat.interval.ms", typ: typeInt, doc: "The group's heartbeat interval.",
		def:   brokerInt(func(c *Config) int64 { return c.ShareHeartbeatIntervalMs }),
		check: boundedBy(func(c *Config) int64 { return c.ShareMinHeartbeatIntervalMs }, func(c *Config) int64 { return c.ShareMaxHeartbeatIntervalMs })},
	{key: "share.session.timeout.ms", typ: typeInt, doc: "The group's member session timeout.",
		def:   brokerInt(func(c *Config) int64 { return c.ShareSessionTimeoutMs }),
		check: boundedBy(func(c *Config) int64 { return c.ShareMinSessionTimeoutMs }, func(c *Config) int64 { return c.ShareMaxSessionTimeoutMs })},
	{key: "share.isolation.level", typ: typeString, doc: "read_uncommitted, or read_committed to deliver only committed transactional records.",
		def: func(*Config) string { return "read_uncommitted" }, check: func(_ *Config, v string) error {
			if v != "read_uncommitted" && v != "read_committed" {
				return fmt.Errorf("must be read_uncommitted or read_committed, got %q", v)
			}
			return nil
		}},
}

func groupPropByKey(key string) *groupProp {
	for i := range groupProps {
		if groupProps[i].key == key {
			return &groupProps[i]
		}
	}
	return nil
}

func checkShareAutoOffsetReset(v string) error {
	if v == "latest" || v == "earliest" {
		return nil
	}
	if d, ok := strings.CutPrefix(v, "by_duration:"); ok {
		if _, err := parseISODuration(d); err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("must be latest, earliest or by_duration:<ISO-8601 duration>, got %q", v)
}

func openGroupConfigs(b *Broker) (*groupConfigs, error) {
	g := &groupConfigs{b: b, values: map[string]map[string]string{}}
	path := b.cfg.DataDir + "/" + groupConfigsFile
	data, err := readFile(b.fs, path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", path, err)
	default:
		if err := json.Unmarshal(data, &g.values); err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	return g, nil
}

// own is a copy of a group's own values.
func (g *groupConfigs) own(group string) map[string]string {
	if c := g.b.cluster; c != nil {
		var kv map[string]string
		c.q.View(func(img *metadata.Image) { kv = maps.Clone(img.Configs[groupConfigResource(group)]) })
		return kv
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.values[group])
}

func groupConfigResource(group string) metadata.ConfigResource {
	return metadata.ConfigResource{Type: int8(kmsg.ConfigResourceTypeGroupConfig), Name: group}
}

// ownLocked is own with g.mu held (a single node's values are under it).
func (g *groupConfigs) ownLocked(group string) map[string]string {
	if g.b.cluster != nil {
		return g.own(group)
	}
	return maps.Clone(g.values[group])
}

// get is a group's value of key: its own, else the broker's.
func (g *groupConfigs) get(group, key string) string {
	if c := g.b.cluster; c != nil {
		v, ok := "", false
		c.q.View(func(img *metadata.Image) { v, ok = img.Configs[groupConfigResource(group)][key] })
		if ok {
			return v
		}
		return groupPropByKey(key).def(g.b.conf())
	}
	g.mu.Lock()
	v, ok := g.values[group][key]
	g.mu.Unlock()
	if ok {
		return v
	}
	return groupPropByKey(key).def(g.b.conf())
}

func (g *groupConfigs) getInt(group, key string) int64 {
	n, _ := strconv.ParseInt(g.get(group, key), 10, 64)
	return n
}

// alter applies fn to a group's configs, checks every key and value, and
// persists the result unless validateOnly.
func (g *groupConfigs) alter(group string, fn func(cur map[string]string) (map[string]string, error), validateOnly bool) error {
	if group == "" {
		return newTopicError(kerr.InvalidRequest, "Group name can't be empty.")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	next, err := fn(g.ownLocked(group))
	if err != nil {
		return err
	}
	if next == nil {
		next = map[string]string{}
	}
	for k, v := range next {
		p := groupPropByKey(k)
		if p == nil {
			return newTopicError(kerr.InvalidConfig, "Unknown group config name: %s", k)
		}
		if err := p.check(g.b.conf(), v); err != nil {
			return newTopicError(kerr.InvalidConfig, "Invalid value %s for configuration %s: %v", v, k, err)
		}
	}
	if validateOnly {
		return nil
	}
	if c := g.b.cluster; c != nil {
		res := groupConfigResource(group)
		return c.setConfigs(res.Type, group, next, func(*metadata.Image) error { return nil }, func() bool {
			applied := true
			c.q.View(func(img *metadata.Image) { applied = maps.Equal(img.Configs[res], next) })
			return applied
		})
	}
	values := maps.Clone(g.values)
	if len(next) == 0 {
		delete(values, group)
	} else {
		values[group] = next
	}
	data, err := json.Marshal(values)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(g.b.fs, g.b.cfg.DataDir+"/"+groupConfigsFile, data); err != nil {
		return err
	}
	g.values = values
	return nil
}

// forget drops a deleted group's configs, as Kafka does.
func (g *groupConfigs) forget(group string) {
	if err := g.alter(group, func(map[string]string) (map[string]string, error) { return nil, nil }, false); err != nil {
		g.b.log.Warn("dropping a deleted group's configs", "group", group, "err", err)
	}
}

// describe answers DescribeConfigs for a group.
func (g *groupConfigs) describe(group string, names []string, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	own := g.own(group)
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for i := range groupProps {
		p := &groupProps[i]
		if !wanted(names, p.key) {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		v, ok := own[p.key]
		c.Source = kmsg.ConfigSourceGroupConfig
		if !ok {
			v, c.Source, c.IsDefault = p.def(g.b.conf()), kmsg.ConfigSourceDefaultConfig, true
		}
		c.Name, c.Value, c.ConfigType = p.key, &v, kmsg.ConfigType(p.typ)
		if docs {
			c.Documentation = &p.doc
		}
		out = append(out, c)
	}
	return out
}
