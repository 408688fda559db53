package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/metadata"
)

// Topics on a cluster: the active controller decides creations, growth and
// deletions and appends them to the metadata log; every node makes its
// local logs match the image as it applies the log (onApply). A node that
// is not the active controller forwards the request to it over its
// CONTROLLER endpoint (Kafka forwards with Envelope; kafkit sends the
// admin request itself), then waits, bounded, until its own image has the
// result, so that the client's next request to it sees the change.

// controllerListener names connections that came in on the CONTROLLER
// endpoint: other nodes' requests.
const controllerListener = defaultControllerListener

// localWait bounds the wait for this node's image to apply a change the
// controller committed.
const localWait = 10 * time.Second

func isInternalTopic(name string) bool { return name == offsetsTopic || name == txnStateTopic }

// createTopic is topicRegistry.create on a cluster, after the name checks.
func (c *cluster) createTopic(s createSpec) (*topic, error) {
	if err := validateTopicConfigs(s.configs); err != nil {
		return nil, newTopicError(kerr.InvalidConfig, "%s", strings.TrimPrefix(err.Error(), errInvalidConfig.Error()+": "))
	}
	var assignment [][]int32
	if len(s.assignment) > 0 {
		if s.partitions != -1 || s.replicationFactor != -1 {
			return nil, newTopicError(kerr.InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.")
		}
		assignment = make([][]int32, len(s.assignment))
		for _, a := range s.assignment {
			if a.partition < 0 || int(a.partition) >= len(assignment) || assignment[a.partition] != nil {
				return nil, newTopicError(kerr.InvalidReplicaAssignment, "partitions should be a consecutive 0-based integer sequence")
			}
			assignment[a.partition] = a.replicas
		}
	}
	if s.partitions == -1 {
		s.partitions = int32(c.b.cfg.NumPartitions)
	}
	if s.replicationFactor == -1 {
		s.replicationFactor = int16(c.b.cfg.DefaultReplicationFactor)
	}
	if !c.q.IsController() {
		return c.forwardCreate(s)
	}
	var id [16]byte
	rand.Read(id[:])
	if s.validateOnly {
		var err error
		c.q.View(func(img *metadata.Image) {
			_, err = img.CreateTopic(s.name, id, int(s.partitions), int(s.replicationFactor), assignment, s.configs, 0)
		})
		if err != nil {
			return nil, kafkaError(err)
		}
		return &topic{name: s.name, id: id, configs: s.configs, partitions: make([]*partition, max(s.partitions, int32(len(assignment))))}, nil
	}
	ctx, cancel := context.WithTimeout(c.b.ctx, localWait)
	defer cancel()
	_, err := c.decide(ctx, func(img *metadata.Image) ([]metadata.Record, error) {
		for name := range img.Topics {
			if name != s.name && collisionKey(name, foldCaseNames) == collisionKey(s.name, foldCaseNames) {
				return nil, newTopicError(kerr.InvalidTopicException, "Topic '%s' collides with existing topic: %s", s.name, name)
			}
		}
		return img.CreateTopic(s.name, id, int(s.partitions), int(s.replicationFactor), assignment, s.configs, int(id[0]))
	})
	if err != nil {
		return nil, kafkaError(err)
	}
	if t := c.b.topics.get(s.name); t != nil || !c.b.cfg.controllerOnly() {
		return t, nil // applied here before decide returned
	}
	// A controller-only node answers from its image: it has no logs.
	var t *topic
	c.q.View(func(img *metadata.Image) {
		if it := img.Topics[s.name]; it != nil {
			t = &topic{name: s.name, id: it.ID, configs: c.topicConfigs(img, s.name), partitions: make([]*partition, len(it.Partitions))}
		}
	})
	return t, nil
}

// topicConfigs are a topic's dynamic configs in img, a map of its own.
func (c *cluster) topicConfigs(img *metadata.Image, name string) map[string]string {
	kv := maps.Clone(img.Configs[metadata.ConfigResource{Type: metadata.ConfigTopic, Name: name}])
	if kv == nil {
		kv = map[string]string{}
	}
	return kv
}

// imageTopicConfigs are the configs of topic name as the image has them,
// false when it has no such topic: what a controller-only node, which
// keeps no topics of its own, alters a topic's configs from.
func (c *cluster) imageTopicConfigs(name string) (kv map[string]string, ok bool) {
	c.q.View(func(img *metadata.Image) {
		if _, ok = img.Topics[name]; ok {
			kv = c.topicConfigs(img, name)
		}
	})
	return kv, ok
}

// kafkaError turns the controller's "kerr: message" errors into topic
// errors with Kafka's message.
func kafkaError(err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		msg := strings.TrimPrefix(err.Error(), ke.Error()+": ")
		if msg != err.Error() {
			return newTopicError(ke, "%s", msg)
		}
	}
	return err
}

// forwardCreate sends the creation to the active controller.
func (c *cluster) forwardCreate(s createSpec) (*topic, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.ValidateOnly = s.validateOnly
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = s.name, s.partitions, s.replicationFactor
	for _, a := range s.assignment {
		rt.NumPartitions, rt.ReplicationFactor = -1, -1
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, kmsg.CreateTopicsRequestTopicReplicaAssignment{Partition: a.partition, Replicas: a.replicas})
	}
	for _, k := range slices.Sorted(maps.Keys(s.configs)) {
		v := s.configs[k]
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: &v})
	}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(c.b.ctx, localWait)
	defer cancel()
	resp, err := c.toController(ctx, req, func(r kmsg.Response) int16 { return r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode })
	if err != nil {
		return nil, forwardError(err)
	}
	st := resp.(*kmsg.CreateTopicsResponse).Topics[0]
	if st.ErrorCode != 0 {
		return nil, answerError(st.ErrorCode, st.ErrorMessage)
	}
	if s.validateOnly {
		return &topic{name: s.name, id: st.TopicID, configs: s.configs, partitions: make([]*partition, st.NumPartitions)}, nil
	}
	return awaitLocal(ctx, func() bool { t := c.b.topics.get(s.name); return t != nil && t.id == st.TopicID }, func() *topic { return c.b.topics.get(s.name) })
}

// answerError is the controller's answer to a forwarded request, with
// its message.
func answerError(code int16, message *string) error {
	ke, ok := kerr.ErrorForCode(code).(*kerr.Error)
	if !ok {
		ke = kerr.UnknownServerError
	}
	msg := ke.Error()
	if message != nil {
		msg = *message
	}
	return newTopicError(ke, "%s", msg)
}

// forwardError is a failure to reach the active controller: retriable,
// as NOT_CONTROLLER is for Kafka's clients.
func forwardError(err error) error {
	if errors.Is(err, kerr.NotController) {
		return newTopicError(kerr.NotController, "No active controller: the metadata quorum has no leader.")
	}
	return newTopicError(kerr.RequestTimedOut, "The active controller could not be reached: %v", err)
}

// awaitLocal waits until this node's image shows the change (done) and
// returns what get returns; on timeout the change is committed but not
// here yet, which Kafka's clients retry.
func awaitLocal[T any](ctx context.Context, done func() bool, get func() T) (T, error) {
	for !done() {
		select {
		case <-ctx.Done():
			var zero T
			return zero, newTopicError(kerr.RequestTimedOut, "The change was committed but this broker has not applied it yet.")
		case <-time.After(10 * time.Millisecond):
		}
	}
	return get(), nil
}

// deleteTopic is topicRegistry.delete on a cluster.
func (c *cluster) deleteTopic(name string) error {
	if isInternalTopic(name) {
		return newTopicError(kerr.TopicAuthorizationFailed, "Cannot delete internal topic %s", name)
	}
	ctx, cancel := context.WithTimeout(c.b.ctx, localWait)
	defer cancel()
	if c.q.IsController() {
		_, err := c.decide(ctx, func(img *metadata.Image) ([]metadata.Record, error) { return img.DeleteTopic(name) })
		return kafkaError(err)
	}
	req := kmsg.NewPtrDeleteTopicsRequest()
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic = &name
	req.Topics, req.TopicNames = append(req.Topics, rt), []string{name}
	resp, err := c.toController(ctx, req, func(r kmsg.Response) int16 { return r.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode })
	if err != nil {
		return forwardError(err)
	}
	st := resp.(*kmsg.DeleteTopicsResponse).Topics[0]
	if st.ErrorCode != 0 {
		return kerr.ErrorForCode(st.ErrorCode)
	}
	_, err = awaitLocal(ctx, func() bool { return c.b.topics.get(name) == nil }, func() bool { return true })
	return err
}

// growTopic is topicRegistry.grow on a cluster.
func (c *cluster) growTopic(name string, count int32, validateOnly bool) error {
	ctx, cancel := context.WithTimeout(c.b.ctx, localWait)
	defer cancel()
	if c.q.IsController() {
		decide := func(img *metadata.Image) ([]metadata.Record, error) {
			if count > maxPartitionsPerTopic {
				return nil, newTopicError(kerr.InvalidPartitions, "Number of partitions %d is above this broker's limit of %d per topic.", count, maxPartitionsPerTopic)
			}
			if t := img.Topics[name]; t != nil && int(count) == len(t.Partitions) {
				return nil, newTopicError(kerr.InvalidPartitions, "Topic already has %d partitions.", count)
			}
			return img.CreatePartitions(name, int(count), nil, int(count))
		}
		if validateOnly {
			var err error
			c.q.View(func(img *metadata.Image) { _, err = decide(img) })
			return kafkaError(err)
		}
		_, err := c.decide(ctx, decide)
		return kafkaError(err)
	}
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.ValidateOnly = validateOnly
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = name, count
	req.Topics = append(req.Topics, rt)
	resp, err := c.toController(ctx, req, func(r kmsg.Response) int16 { return r.(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode })
	if err != nil {
		return forwardError(err)
	}
	st := resp.(*kmsg.CreatePartitionsResponse).Topics[0]
	if st.ErrorCode != 0 {
		return answerError(st.ErrorCode, st.ErrorMessage)
	}
	if validateOnly {
		return nil
	}
	_, err = awaitLocal(ctx, func() bool { t := c.b.topics.get(name); return t != nil && len(t.partitions) >= int(count) }, func() bool { return true })
	return err
}

// onApply makes the local logs follow the image, in log order, on raft's
// FSM goroutine: topics created or grown get their local logs (every
// partition, see cluster), removed ones are deleted and their committed
// offsets forgotten, topic configs applied; then the coordinators follow
// their partitions' leadership.
func (c *cluster) onApply(_ uint64, records []metadata.Record, img *metadata.Image) {
	c.syncSecurity(img)
	c.b.features.fromImage(records, img)
	touched := map[[16]byte]bool{}
	configs := map[string]bool{}
	brokerConfigs := false
	for _, r := range records {
		switch x := r.(type) {
		case *metadata.Partition:
			touched[x.TopicID] = true
		case *metadata.RemoveTopic:
			if t := c.b.topics.getByID(x.ID); t != nil {
				c.stopReplicas(t)
				if err := c.b.topics.deleteLocal(t.name); err != nil {
					c.b.log.Warn("deleting a removed topic's logs", "topic", t.name, "err", err)
				}
				c.forgetOffsets(t.name)
			}
		case *metadata.Config:
			switch x.ResourceType {
			case metadata.ConfigTopic:
				configs[x.ResourceName] = true
			case metadata.ConfigBroker:
				brokerConfigs = true
			}
		}
	}
	if c.b.cfg.controllerOnly() {
		clear(touched) // it keeps no partitions
	}
	for id := range touched {
		t := img.TopicsByID[id]
		if t == nil {
			continue
		}
		if err := c.b.topics.adopt(t.Name, t.ID, int32(len(t.Partitions)), img.Configs[metadata.ConfigResource{Type: metadata.ConfigTopic, Name: t.Name}]); err != nil {
			c.b.log.Error("opening the local logs of a topic in the metadata image", "topic", t.Name, "err", err)
		}
		delete(configs, t.Name)
	}
	for name := range configs {
		if c.b.topics.get(name) == nil {
			continue
		}
		if err := c.b.topics.setConfigsLocal(name, maps.Clone(img.Configs[metadata.ConfigResource{Type: metadata.ConfigTopic, Name: name}])); err != nil {
			c.b.log.Warn("applying topic configs", "topic", name, "err", err)
		}
	}
	if brokerConfigs {
		c.brokerConfigs(img)
	}
	first := c.catchUp(img)
	c.applyReplication(records, img, first)
	c.followCoordinators(img)
	c.followShareLeaders(img)
}

// adopt makes the local topic name the image's: id, at least partitions
// local logs, configs. A local topic of that name with another id (left
// from before) is replaced.
func (r *topicRegistry) adopt(name string, id [16]byte, partitions int32, configs map[string]string) error {
	if t := r.get(name); t != nil && t.id != id {
		if err := r.deleteLocal(name); err != nil {
			return err
		}
	}
	if t := r.get(name); t != nil {
		if int32(len(t.partitions)) < partitions {
			if err := r.growLocal(name, partitions, false); err != nil {
				return err
			}
		}
		return r.setConfigsLocal(name, maps.Clone(configs))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := &topic{name: name, id: id, internal: isInternalTopic(name), configs: maps.Clone(configs)}
	if t.configs == nil {
		t.configs = map[string]string{}
	}
	parts, err := r.openPartitions(t, 0, partitions)
	if err != nil {
		deletePartitions(parts)
		return fmt.Errorf("opening %d partitions: %w", partitions, err)
	}
	t.partitions = parts
	r.byName[name], r.byID[id] = t, t
	if err := r.persist(); err != nil {
		delete(r.byName, name)
		delete(r.byID, id)
		deletePartitions(parts)
		return err
	}
	return nil
}

// setTopicConfigs is topicRegistry.setConfigs on a cluster.
func (c *cluster) setTopicConfigs(name string, next map[string]string) error {
	return c.setConfigs(metadata.ConfigTopic, name, next, func(img *metadata.Image) error {
		if img.Topics[name] == nil {
			return newTopicError(kerr.UnknownTopicOrPartition, "Topic %s does not exist", name)
		}
		return nil
	}, func() bool { t := c.b.topics.get(name); return t == nil || maps.Equal(t.configs, next) })
}

// setConfigs makes a config resource's dynamic values next: the
// controller records the keys that change (Config records, a null value
// deleting one) if check passes on its image; another node forwards them
// as IncrementalAlterConfigs and waits until applied says its own image
// and state have them.
func (c *cluster) setConfigs(typ int8, name string, next map[string]string, check func(*metadata.Image) error, applied func() bool) error {
	ctx, cancel := context.WithTimeout(c.b.ctx, localWait)
	defer cancel()
	res := metadata.ConfigResource{Type: typ, Name: name}
	if c.q.IsController() {
		_, err := c.decide(ctx, func(img *metadata.Image) ([]metadata.Record, error) {
			if err := check(img); err != nil {
				return nil, err
			}
			var out []metadata.Record
			cur := img.Configs[res]
			for _, k := range slices.Sorted(maps.Keys(next)) {
				if v, ok := cur[k]; !ok || v != next[k] {
					v := next[k]
					out = append(out, &metadata.Config{ResourceType: typ, ResourceName: name, Name: k, Value: &v})
				}
			}
			for _, k := range slices.Sorted(maps.Keys(cur)) {
				if _, ok := next[k]; !ok {
					out = append(out, &metadata.Config{ResourceType: typ, ResourceName: name, Name: k})
				}
			}
			return out, nil
		})
		return kafkaError(err)
	}
	var cur map[string]string
	c.q.View(func(img *metadata.Image) { cur = maps.Clone(img.Configs[res]) })
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceType(typ), name
	for _, k := range slices.Sorted(maps.Keys(next)) {
		if v, ok := cur[k]; !ok || v != next[k] {
			r.Configs = append(r.Configs, kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: k, Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr(next[k])})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(cur)) {
		if _, ok := next[k]; !ok {
			r.Configs = append(r.Configs, kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: k, Op: kmsg.IncrementalAlterConfigOpDelete})
		}
	}
	req.Resources = append(req.Resources, r)
	resp, err := c.toController(ctx, req, func(r kmsg.Response) int16 { return r.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode })
	if err != nil {
		return forwardError(err)
	}
	rr := resp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
	if rr.ErrorCode != 0 {
		return answerError(rr.ErrorCode, rr.ErrorMessage)
	}
	_, err = awaitLocal(ctx, applied, func() bool { return true })
	return err
}

// brokerConfigs applies the image's dynamic broker configs (the cluster
// default and this broker's own) to this node, after a batch changed
// them.
func (c *cluster) brokerConfigs(img *metadata.Image) {
	values := map[string]map[string]string{}
	for _, name := range []string{"", c.b.brokerName()} {
		if kv := img.Configs[metadata.ConfigResource{Type: metadata.ConfigBroker, Name: name}]; len(kv) > 0 {
			values[name] = maps.Clone(kv)
		}
	}
	if err := c.b.dynamic.adopt(values); err != nil {
		c.b.log.Error("applying the dynamic broker configs of the metadata image", "err", err)
	}
}
