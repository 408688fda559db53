package broker

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// IncrementalAlterConfigs: v0-1 (v1 flexible). SET, DELETE, APPEND and
// SUBTRACT (the last two only on list-typed keys), as KIP-339.
var incrementalAlterConfigsVersions = versions{0, 1}

func (b *Broker) handleIncrementalAlterConfigs(rc *reqCtx, req *kmsg.IncrementalAlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		res := kmsg.NewIncrementalAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		err := b.alterResource(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string) (map[string]string, error) {
			if cur == nil {
				cur = map[string]string{}
			}
			seen := map[string]bool{}
			for _, c := range rr.Configs {
				if seen[c.Name] {
					return nil, newTopicError(kerr.InvalidRequest, "Error due to duplicate config keys")
				}
				seen[c.Name] = true
				if err := b.applyConfigOp(rr.ResourceType, cur, c); err != nil {
					return nil, err
				}
			}
			return cur, nil
		})
		res.ErrorCode, res.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, res)
	}
	return resp, nil
}

func (b *Broker) applyConfigOp(typ kmsg.ConfigResourceType, cur map[string]string, c kmsg.IncrementalAlterConfigsRequestResourceConfig) error {
	value := ""
	if c.Value != nil {
		value = *c.Value
	}
	switch c.Op {
	case kmsg.IncrementalAlterConfigOpSet:
		cur[c.Name] = value
	case kmsg.IncrementalAlterConfigOpDelete:
		delete(cur, c.Name)
	case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
		if !b.isListConfig(typ, c.Name) {
			return newTopicError(kerr.InvalidConfig, "Config value append is not allowed for config key: %s", c.Name)
		}
		list := b.currentList(typ, cur, c.Name)
		for _, v := range strings.Split(value, ",") {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			i := slices.Index(list, v)
			if c.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0 {
				list = append(list, v)
			} else if c.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0 {
				list = slices.Delete(list, i, i+1)
			}
		}
		cur[c.Name] = strings.Join(list, ",")
	default:
		return newTopicError(kerr.InvalidRequest, "Unknown alter config operation %d for %s", c.Op, c.Name)
	}
	return nil
}

func (b *Broker) isListConfig(typ kmsg.ConfigResourceType, key string) bool {
	if typ == kmsg.ConfigResourceTypeTopic {
		p := topicPropByKey[key]
		return p != nil && p.typ == typeList
	}
	p := brokerPropByKey[key]
	return p != nil && p.typ == typeList
}

// currentList is a list key's value before the operation: the resource's own
// dynamic value, else the effective default.
func (b *Broker) currentList(typ kmsg.ConfigResourceType, cur map[string]string, key string) []string {
	v, ok := cur[key]
	if !ok {
		if typ == kmsg.ConfigResourceTypeTopic {
			v, _ = b.conf().topicValue(topicPropByKey[key], nil)
		} else if p := brokerPropByKey[key]; p != nil {
			v = p.def
		}
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
