package broker

import (
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkit/kafkit/internal/metadata"
)

// dynamicConfigs holds the broker configs changed at runtime through
// (Incremental)AlterConfigs on the broker resource, persisted in
// <log.dirs>/dynamic-configs.json so they survive restarts as Kafka's do.
//
// Readers take the current effective Config (static server.properties plus
// the dynamic values) through an atomic pointer, so the produce and fetch
// paths never lock; writers serialize on mu.
type dynamicConfigs struct {
	b         *Broker
	mu        sync.Mutex                   // guards values and the file
	values    map[string]map[string]string // resource name ("" = cluster default, else broker id) -> key -> value
	effective atomic.Pointer[Config]
	// changed wakes the cleaner loop when the values change, as Kafka
	// restarts its cleaner threads on reconfiguration.
	changed chan struct{}
}

const dynamicConfigsFile = "dynamic-configs.json"

// dynamicBrokerKeys are the broker keys that may change at runtime: the
// cluster-wide defaults of topic configs, as in Kafka's DynamicLogConfig,
// and the log cleaner's (LogCleaner.ReconfigurableConfigs) that it has.
var dynamicBrokerKeys = map[string]bool{
	"log.retention.ms": true, "log.retention.bytes": true, "log.segment.bytes": true, "log.roll.ms": true,
	"log.flush.interval.messages": true, "log.flush.interval.ms": true, "log.index.interval.bytes": true,
	"log.index.size.max.bytes": true, "message.max.bytes": true, "log.message.timestamp.type": true,
	"log.message.timestamp.before.max.ms": true, "log.message.timestamp.after.max.ms": true,
	"log.cleanup.policy": true, "compression.type": true, "min.insync.replicas": true, "log.cleaner.backoff.ms": true,
}

func openDynamicConfigs(b *Broker) (*dynamicConfigs, error) {
	d := &dynamicConfigs{b: b, values: map[string]map[string]string{}, changed: make(chan struct{}, 1)}
	path := b.cfg.DataDir + "/" + dynamicConfigsFile
	if err := readJSON(b.fs, path, &d.values); err != nil {
		return nil, err
	}
	eff, err := d.build(d.values)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d.effective.Store(eff)
	return d, nil
}

// build applies dynamic values over the static config: the broker's own
// entry beats the cluster default, as in Kafka.
func (d *dynamicConfigs) build(values map[string]map[string]string) (*Config, error) {
	c := d.b.cfg
	c.dynamic = map[string]int8{}
	var errs []error
	apply := func(name string, src int8) {
		for k, v := range values[name] {
			if err := brokerPropByKey[k].set(&c, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
				continue
			}
			c.dynamic[k] = src
		}
	}
	apply("", sourceDynamicDefaultBroker)
	apply(d.b.brokerName(), sourceDynamicBroker)
	return &c, errors.Join(errs...)
}

// alter replaces the dynamic values of one broker resource (name "" for the
// cluster default), validating first; nothing changes on error. On a
// cluster the values are the metadata image's, changed through the
// controller: every node applies them (adopt) as it applies the log.
func (d *dynamicConfigs) alter(name string, fn func(cur map[string]string) (map[string]string, error), validateOnly bool) error {
	if c := d.b.cluster; c != nil {
		var cur map[string]string
		c.q.View(func(img *metadata.Image) {
			cur = maps.Clone(img.Configs[metadata.ConfigResource{Type: metadata.ConfigBroker, Name: name}])
		})
		next, err := fn(cur)
		if err != nil {
			return err
		}
		if err := d.validate(name, next); err != nil || validateOnly {
			return err
		}
		return c.setConfigs(metadata.ConfigBroker, name, next, func(*metadata.Image) error { return nil }, func() bool {
			applied := true
			c.q.View(func(img *metadata.Image) {
				applied = maps.Equal(img.Configs[metadata.ConfigResource{Type: metadata.ConfigBroker, Name: name}], next)
			})
			return applied
		})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	next, err := fn(maps.Clone(d.values[name]))
	if err != nil {
		return err
	}
	if err := d.validate(name, next); err != nil || validateOnly {
		return err
	}
	values := maps.Clone(d.values)
	values[name] = next
	if len(next) == 0 {
		delete(values, name)
	}
	if err := writeJSON(d.b.fs, d.b.cfg.DataDir+"/"+dynamicConfigsFile, values); err != nil {
		return err
	}
	eff, _ := d.build(values) // validated
	d.values = values
	d.effective.Store(eff)
	d.b.topics.reconfigure()
	d.notify()
	return nil
}

// adopt makes values (by resource name) this node's dynamic broker
// configs: a cluster node's, from the metadata image.
func (d *dynamicConfigs) adopt(values map[string]map[string]string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	eff, err := d.build(values)
	if err != nil {
		return err
	}
	d.values = values
	d.effective.Store(eff)
	d.b.topics.reconfigure()
	d.notify()
	return nil
}

// notify wakes the cleaner loop, if it is not already to wake.
func (d *dynamicConfigs) notify() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// validate checks one broker resource's next dynamic values: known keys
// that may change at runtime, with values the config accepts.
func (d *dynamicConfigs) validate(name string, next map[string]string) error {
	var readOnly []string
	for k := range next {
		if _, known := brokerPropByKey[k]; !known {
			return newTopicError(kerr.InvalidConfig, "Unknown broker config name: %s", k)
		}
		if !dynamicBrokerKeys[k] {
			readOnly = append(readOnly, k)
		}
	}
	if len(readOnly) > 0 {
		sort.Strings(readOnly)
		return newTopicError(kerr.InvalidRequest, "Cannot update these configs dynamically: %s", strings.Join(readOnly, ","))
	}
	// As the cluster default, so that every value is parsed.
	if _, err := d.build(map[string]map[string]string{"": next}); err != nil {
		return newTopicError(kerr.InvalidConfig, "%v", err)
	}
	return nil
}

// snapshot copies the dynamic values for DescribeConfigs.
func (d *dynamicConfigs) snapshot() map[string]map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]map[string]string, len(d.values))
	for name, kv := range d.values {
		out[name] = maps.Clone(kv)
	}
	return out
}
