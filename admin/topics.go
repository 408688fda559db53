package admin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/kafkit/kafkit/internal/client"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicID is a topic's id (Kafka's Uuid).
type TopicID [16]byte

// String formats the id as Kafka's tools do: URL-safe base64, no padding.
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// MarshalText lets JSON output show the id as String does.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// NewTopic describes a topic to create. Zero Partitions and
// ReplicationFactor take the broker's num.partitions and
// default.replication.factor.
type NewTopic struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string // topic configs, e.g. cleanup.policy
}

// CreatedTopic is what the broker reports for one topic of CreateTopics.
type CreatedTopic struct {
	Name              string
	ID                TopicID
	Partitions        int32 // -1 if the broker does not say (CreateTopics < v5)
	ReplicationFactor int16 // -1 if the broker does not say
	Err               error // nil when created (or, validating only, when valid)
}

// CreateTopics creates topics; with validateOnly the broker only checks
// them. The result has one entry per topic, in order; the error joins every
// topic's failure (errors.Is(err, kerr.TopicAlreadyExists) ...).
func (c *Client) CreateTopics(ctx context.Context, validateOnly bool, topics ...NewTopic) ([]CreatedTopic, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = c.timeoutMillis()
	req.ValidateOnly = validateOnly
	for _, t := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = t.Name
		rt.NumPartitions, rt.ReplicationFactor = -1, -1
		if t.Partitions > 0 {
			rt.NumPartitions = t.Partitions
		}
		if t.ReplicationFactor > 0 {
			rt.ReplicationFactor = t.ReplicationFactor
		}
		for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
			rc := kmsg.NewCreateTopicsRequestTopicConfig()
			rc.Name, rc.Value = k, kmsg.StringPtr(t.Configs[k])
			rt.Configs = append(rt.Configs, rc)
		}
		req.Topics = append(req.Topics, rt)
	}
	kresp, err := c.toController(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("create topics: %w", err)
	}
	defer c.cl.InvalidateMetadata()
	byName := make(map[string]kmsg.CreateTopicsResponseTopic)
	for _, rt := range kresp.(*kmsg.CreateTopicsResponse).Topics {
		byName[rt.Topic] = rt
	}
	out := make([]CreatedTopic, 0, len(topics))
	var errs []error
	for _, t := range topics {
		rt, ok := byName[t.Name]
		ct := CreatedTopic{Name: t.Name, Partitions: -1, ReplicationFactor: -1}
		if !ok {
			ct.Err = fmt.Errorf("create topic %s: the broker did not answer for it", t.Name)
		} else {
			ct.ID = rt.TopicID
			if kresp.GetVersion() >= 5 {
				ct.Partitions, ct.ReplicationFactor = rt.NumPartitions, rt.ReplicationFactor
			}
			ct.Err = kafkaErr("create topic", t.Name, rt.ErrorCode, rt.ErrorMessage)
		}
		if ct.Err != nil {
			errs = append(errs, ct.Err)
		}
		out = append(out, ct)
	}
	return out, errors.Join(errs...)
}

// DeleteTopics deletes topics by name; the error joins every topic's failure
// (kerr.UnknownTopicOrPartition for one that does not exist).
func (c *Client) DeleteTopics(ctx context.Context, names ...string) error {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = c.timeoutMillis()
	req.TopicNames = names // v0-v5
	for _, n := range names {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(n) // v6+
		req.Topics = append(req.Topics, rt)
	}
	kresp, err := c.toController(ctx, req)
	if err != nil {
		return fmt.Errorf("delete topics: %w", err)
	}
	defer c.cl.InvalidateMetadata()
	var errs []error
	for _, rt := range kresp.(*kmsg.DeleteTopicsResponse).Topics {
		name := TopicID(rt.TopicID).String()
		if rt.Topic != nil {
			name = *rt.Topic
		}
		errs = append(errs, kafkaErr("delete topic", name, rt.ErrorCode, rt.ErrorMessage))
	}
	return errors.Join(errs...)
}

// CreatePartitions raises topics' partition counts to the given totals
// (Kafka cannot remove partitions: a lower total fails with
// INVALID_PARTITIONS); with validateOnly the broker only checks.
func (c *Client) CreatePartitions(ctx context.Context, validateOnly bool, totals map[string]int32) error {
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = c.timeoutMillis()
	req.ValidateOnly = validateOnly
	for _, t := range slices.Sorted(maps.Keys(totals)) {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = t, totals[t]
		req.Topics = append(req.Topics, rt)
	}
	kresp, err := c.toController(ctx, req)
	if err != nil {
		return fmt.Errorf("create partitions: %w", err)
	}
	defer c.cl.InvalidateMetadata()
	var errs []error
	for _, rt := range kresp.(*kmsg.CreatePartitionsResponse).Topics {
		errs = append(errs, kafkaErr("create partitions", rt.Topic, rt.ErrorCode, rt.ErrorMessage))
	}
	return errors.Join(errs...)
}

// ListTopics returns the cluster's topic names, sorted; internal topics
// (__consumer_offsets, __transaction_state) only with includeInternal.
func (c *Client) ListTopics(ctx context.Context, includeInternal bool) ([]string, error) {
	md, err := c.metadata(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, t := range md.Topics {
		if t.Err == nil && (includeInternal || !t.Internal) {
			names = append(names, t.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// PartitionInfo is one partition as the cluster metadata describes it.
type PartitionInfo struct {
	Partition       int32
	Leader          int32 // -1 while there is no leader
	LeaderEpoch     int32 // -1 if the broker does not say
	Replicas        []int32
	ISR             []int32
	OfflineReplicas []int32
}

// TopicDescription is one topic with its partitions, sorted by partition.
type TopicDescription struct {
	Name       string
	ID         TopicID
	Internal   bool
	Partitions []PartitionInfo
}

// ReplicationFactor is the number of replicas of the topic's first
// partition, as kafka-topics.sh reports it.
func (t TopicDescription) ReplicationFactor() int {
	if len(t.Partitions) == 0 {
		return 0
	}
	return len(t.Partitions[0].Replicas)
}

// DescribeTopics describes the named topics (every topic when none are
// named), in the order asked (sorted by name for all). A topic that does not
// exist fails with kerr.UnknownTopicOrPartition; the others are still
// returned.
func (c *Client) DescribeTopics(ctx context.Context, names ...string) ([]TopicDescription, error) {
	md, err := c.metadata(ctx, names...)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		names = slices.Sorted(maps.Keys(md.Topics))
	}
	var out []TopicDescription
	var errs []error
	for _, n := range names {
		t, ok := md.Topics[n]
		if !ok {
			t.Err = kerr.UnknownTopicOrPartition
		}
		if t.Err != nil {
			errs = append(errs, topicErr("describe topic", n, t.Err))
			continue
		}
		td := TopicDescription{Name: n, ID: t.ID, Internal: t.Internal}
		for _, p := range t.Partitions {
			td.Partitions = append(td.Partitions, PartitionInfo{
				Partition: p.ID, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: p.Replicas, ISR: p.ISR, OfflineReplicas: p.Offline,
			})
		}
		out = append(out, td)
	}
	return out, errors.Join(errs...)
}

// topicErr wraps a metadata topic error (a kerr error) like kafkaErr does.
func topicErr(op, topic string, err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return &Error{Op: op, Resource: topic, Code: ke}
	}
	return fmt.Errorf("%s %s: %w", op, topic, err)
}

// metadata returns fresh metadata: an admin reads what it (or someone else)
// just changed, so the shared cache's age does not count.
func (c *Client) metadata(ctx context.Context, topics ...string) (*client.Metadata, error) {
	c.cl.InvalidateMetadata(topics...)
	md, err := c.cl.Metadata(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return md, nil
}

func (c *Client) timeoutMillis() int32 {
	if c.cfg.RequestTimeout > 0 {
		return int32(c.cfg.RequestTimeout.Milliseconds())
	}
	return 30000
}
