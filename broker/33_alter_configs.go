package broker

import (
	"maps"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs: v0-2 (v2 flexible). It replaces the whole set of dynamic
// configs of a resource with the ones given, as Kafka's legacy API does.
var alterConfigsVersions = versions{0, 2}

func (b *Broker) handleAlterConfigs(rc *reqCtx, req *kmsg.AlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		res := kmsg.NewAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		set := make(map[string]string, len(rr.Configs))
		for _, c := range rr.Configs {
			if c.Value != nil {
				set[c.Name] = *c.Value
			}
		}
		err := b.alterResource(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, error) {
			return set, nil
		})
		res.ErrorCode, res.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, res)
	}
	return resp, nil
}

// alterResource applies fn to the dynamic configs of a topic or broker.
func (b *Broker) alterResource(typ kmsg.ConfigResourceType, name string, validateOnly bool, fn func(cur map[string]string) (map[string]string, error)) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		var cur map[string]string
		t := b.topics.get(name)
		found := t != nil
		if found {
			cur = maps.Clone(t.configs)
		} else if b.cluster != nil && b.cfg.controllerOnly() {
			cur, found = b.cluster.imageTopicConfigs(name)
		}
		if !found {
			return newTopicError(kerr.UnknownTopicOrPartition, "Topic %s does not exist", name)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		if err := validateTopicConfigs(next); err != nil {
			return err
		}
		if validateOnly {
			return nil
		}
		return b.topics.setConfigs(name, next)
	case kmsg.ConfigResourceTypeBroker:
		if b.cluster != nil && name != "" {
			// Any broker's, through the controller.
			if id, err := strconv.ParseInt(name, 10, 32); err != nil || id < 0 {
				return newTopicError(kerr.InvalidRequest, "Unexpected broker id, expected an integer or empty string, but received %s", name)
			}
		} else if name != "" && name != b.brokerName() {
			return newTopicError(kerr.InvalidRequest, "Unexpected broker id, expected %d or empty string, but received %s", b.nodeID, name)
		}
		return b.dynamic.alter(name, fn, validateOnly)
	case kmsg.ConfigResourceTypeGroupConfig:
		return b.groupConfigs.alter(name, fn, validateOnly)
	}
	return newTopicError(kerr.InvalidRequest, "Unsupported resource type %s", strconv.Itoa(int(typ)))
}
