package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ResourceType is the kind of entity configs belong to.
type ResourceType int8

const (
	TopicResource  = ResourceType(kmsg.ConfigResourceTypeTopic)
	BrokerResource = ResourceType(kmsg.ConfigResourceTypeBroker)
	// GroupResource is a group's configs (share.auto.offset.reset, ...).
	GroupResource = ResourceType(kmsg.ConfigResourceTypeGroupConfig)
)

func (t ResourceType) String() string {
	switch t {
	case TopicResource:
		return "topic"
	case BrokerResource:
		return "broker"
	case GroupResource:
		return "group"
	}
	return fmt.Sprintf("ResourceType(%d)", int8(t))
}

// ConfigResource names a topic or a broker (by id; "" is the cluster-wide
// default broker config).
type ConfigResource struct {
	Type ResourceType
	Name string
}

func (r ConfigResource) String() string { return r.Type.String() + " " + r.Name }

// ConfigEntry is one config of a resource.
type ConfigEntry struct {
	Name      string
	Value     *string // nil for sensitive configs and unset ones
	Source    string  // Kafka's ConfigSource name: DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG, ...
	IsDefault bool
	ReadOnly  bool
	Sensitive bool
}

// ResourceConfigs is every config of one resource, sorted by name.
type ResourceConfigs struct {
	Resource ConfigResource
	Entries  []ConfigEntry
}

// Overrides returns the entries set on the resource itself (not defaults),
// as kafka-topics.sh --describe shows them under Configs.
func (r ResourceConfigs) Overrides() []ConfigEntry {
	var out []ConfigEntry
	for _, e := range r.Entries {
		if !e.IsDefault && e.Source != kmsg.ConfigSourceDefaultConfig.String() && e.Source != kmsg.ConfigSourceStaticBrokerConfig.String() {
			out = append(out, e)
		}
	}
	return out
}

// DescribeConfigs returns the configs of each resource, in order. A broker's
// configs come from that broker. The error joins every resource's failure;
// the resources that succeeded are still returned.
func (c *Client) DescribeConfigs(ctx context.Context, resources ...ConfigResource) ([]ResourceConfigs, error) {
	var out []ResourceConfigs
	var errs []error
	for _, r := range resources {
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceType(r.Type), r.Name
		req.Resources = []kmsg.DescribeConfigsRequestResource{rr}
		kresp, err := c.toResource(ctx, r, req)
		if err != nil {
			errs = append(errs, fmt.Errorf("describe configs of %s: %w", r, err))
			continue
		}
		resp := kresp.(*kmsg.DescribeConfigsResponse)
		if len(resp.Resources) != 1 {
			errs = append(errs, fmt.Errorf("describe configs of %s: %d resources in the answer, want 1", r, len(resp.Resources)))
			continue
		}
		res := resp.Resources[0]
		if err := kafkaErr("describe configs of", r.String(), res.ErrorCode, res.ErrorMessage); err != nil {
			errs = append(errs, err)
			continue
		}
		rc := ResourceConfigs{Resource: r}
		for _, e := range res.Configs {
			ce := ConfigEntry{Name: e.Name, Value: e.Value, ReadOnly: e.ReadOnly, Sensitive: e.IsSensitive, IsDefault: e.IsDefault}
			if resp.GetVersion() >= 1 {
				ce.Source = e.Source.String()
				ce.IsDefault = e.Source == kmsg.ConfigSourceDefaultConfig
			}
			rc.Entries = append(rc.Entries, ce)
		}
		slices.SortFunc(rc.Entries, func(a, b ConfigEntry) int {
			switch {
			case a.Name < b.Name:
				return -1
			case a.Name > b.Name:
				return 1
			}
			return 0
		})
		out = append(out, rc)
	}
	return out, errors.Join(errs...)
}

// AlterConfigs replaces every dynamic config of r with configs (Kafka's
// legacy AlterConfigs: configs left out return to their defaults). Prefer
// IncrementalAlterConfigs.
func (c *Client) AlterConfigs(ctx context.Context, r ConfigResource, configs map[string]string, validateOnly bool) error {
	req := kmsg.NewPtrAlterConfigsRequest()
	req.ValidateOnly = validateOnly
	rr := kmsg.NewAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceType(r.Type), r.Name
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		rc := kmsg.NewAlterConfigsRequestResourceConfig()
		rc.Name, rc.Value = k, kmsg.StringPtr(configs[k])
		rr.Configs = append(rr.Configs, rc)
	}
	req.Resources = []kmsg.AlterConfigsRequestResource{rr}
	kresp, err := c.toResource(ctx, r, req)
	if err != nil {
		return fmt.Errorf("alter configs of %s: %w", r, err)
	}
	var errs []error
	for _, res := range kresp.(*kmsg.AlterConfigsResponse).Resources {
		errs = append(errs, kafkaErr("alter configs of", r.String(), res.ErrorCode, res.ErrorMessage))
	}
	return errors.Join(errs...)
}

// AlterOp is one change of IncrementalAlterConfigs.
type AlterOp struct {
	Name  string
	Op    OpType
	Value string // ignored by OpDelete
}

// OpType is an IncrementalAlterConfigs operation.
type OpType int8

const (
	OpSet      = OpType(kmsg.IncrementalAlterConfigOpSet)
	OpDelete   = OpType(kmsg.IncrementalAlterConfigOpDelete)   // back to the default
	OpAppend   = OpType(kmsg.IncrementalAlterConfigOpAppend)   // add to a list config
	OpSubtract = OpType(kmsg.IncrementalAlterConfigOpSubtract) // remove from a list config
)

// IncrementalAlterConfigs applies ops to r's configs, leaving the others as
// they are (what kafka-configs.sh --alter does).
func (c *Client) IncrementalAlterConfigs(ctx context.Context, r ConfigResource, ops []AlterOp, validateOnly bool) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.ValidateOnly = validateOnly
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceType(r.Type), r.Name
	for _, op := range ops {
		rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		rc.Name, rc.Op = op.Name, kmsg.IncrementalAlterConfigOp(op.Op)
		if op.Op != OpDelete {
			rc.Value = kmsg.StringPtr(op.Value)
		}
		rr.Configs = append(rr.Configs, rc)
	}
	req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{rr}
	kresp, err := c.toResource(ctx, r, req)
	if err != nil {
		return fmt.Errorf("alter configs of %s: %w", r, err)
	}
	var errs []error
	for _, res := range kresp.(*kmsg.IncrementalAlterConfigsResponse).Resources {
		errs = append(errs, kafkaErr("alter configs of", r.String(), res.ErrorCode, res.ErrorMessage))
	}
	return errors.Join(errs...)
}

// toResource sends a config request to the broker it names (a broker's own
// configs live on it) or, for topics and cluster-wide defaults, to any.
func (c *Client) toResource(ctx context.Context, r ConfigResource, req kmsg.Request) (kmsg.Response, error) {
	if r.Type == BrokerResource && r.Name != "" {
		id, err := strconv.ParseInt(r.Name, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("broker name %q is not a broker id", r.Name)
		}
		return c.cl.RequestBroker(ctx, int32(id), req)
	}
	return c.cl.Request(ctx, req)
}
