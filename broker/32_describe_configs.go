package broker

import (
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs: v0-4. v1 adds sources and synonyms, v3 types and docs, v4
// is flexible.
var describeConfigsVersions = versions{0, 4}

func (b *Broker) handleDescribeConfigs(rc *reqCtx, req *kmsg.DescribeConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := b.topics.get(rr.ResourceName)
			if t == nil {
				res.ErrorCode = kerr.UnknownTopicOrPartition.Code
				msg := "Topic " + rr.ResourceName + " does not exist"
				res.ErrorMessage = &msg
				break
			}
			res.Configs = b.describeTopicConfigs(t.configs, rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(b.nodeID)) {
				res.ErrorCode = kerr.InvalidRequest.Code
				msg := "Unexpected broker id, expected " + strconv.Itoa(int(b.nodeID)) + " or empty string, but received " + rr.ResourceName
				res.ErrorMessage = &msg
				break
			}
			res.Configs = b.describeBrokerConfigs(rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
		case kmsg.ConfigResourceTypeGroupConfig:
			res.Configs = b.groupConfigs.describe(rr.ResourceName, rr.ConfigNames, req.IncludeDocumentation)
		default:
			res.ErrorCode = kerr.InvalidRequest.Code
			msg := "Unsupported resource type " + rr.ResourceType.String()
			res.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, res)
	}
	return resp, nil
}

func wanted(names []string, key string) bool { return names == nil || slices.Contains(names, key) }

func (b *Broker) describeTopicConfigs(overrides map[string]string, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for i := range topicProps {
		p := &topicProps[i]
		if !wanted(names, p.key) {
			continue
		}
		v, src := b.conf().topicValue(p, overrides)
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value = p.key, &v
		c.Source = kmsg.ConfigSource(src)
		c.IsDefault = src == sourceDefault
		c.ConfigType = kmsg.ConfigType(p.typ)
		if docs {
			c.Documentation = &p.doc
		}
		if synonyms {
			if o, ok := overrides[p.key]; ok {
				c.ConfigSynonyms = append(c.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: p.key, Value: &o, Source: kmsg.ConfigSource(sourceDynamicTopic)})
			}
			for _, k := range append([]string{p.brokerKey}, p.altKeys...) {
				if s, ok := b.cfg.explicit[k]; ok {
					c.ConfigSynonyms = append(c.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: k, Value: &s, Source: kmsg.ConfigSource(sourceStaticBroker)})
				}
			}
			if bp := brokerPropByKey[p.brokerKey]; bp != nil && !bp.null {
				d := bp.def
				c.ConfigSynonyms = append(c.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: p.brokerKey, Value: &d, Source: kmsg.ConfigSource(sourceDefault)})
			}
		}
		out = append(out, c)
	}
	return out
}

func (b *Broker) describeBrokerConfigs(names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	values := b.dynamic.snapshot()
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for i := range brokerProps {
		p := &brokerProps[i]
		if !wanted(names, p.key) {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name = p.key
		c.ReadOnly = !dynamicBrokerKeys[p.key]
		c.ConfigType = kmsg.ConfigType(p.typ)
		if docs {
			c.Documentation = &p.doc
		}
		// Every level that sets the key, highest precedence first.
		var levels []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
		add := func(v string, src int8) {
			value := &v
			if p.typ == typePassword {
				value = nil // sensitive: Kafka never returns a password (or a key)
			}
			levels = append(levels, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: p.key, Value: value, Source: kmsg.ConfigSource(src)})
		}
		if v, ok := values[b.brokerName()][p.key]; ok {
			add(v, sourceDynamicBroker)
		}
		if v, ok := values[""][p.key]; ok {
			add(v, sourceDynamicDefaultBroker)
		}
		if v, ok := b.cfg.explicit[p.key]; ok {
			add(v, sourceStaticBroker)
		}
		if !p.null {
			add(p.def, sourceDefault)
		}
		if len(levels) > 0 {
			c.Value, c.Source = levels[0].Value, levels[0].Source
		} else {
			c.Source = kmsg.ConfigSource(sourceDefault)
		}
		c.IsDefault = c.Source == kmsg.ConfigSource(sourceDefault)
		c.IsSensitive = p.typ == typePassword
		if synonyms {
			c.ConfigSynonyms = levels
		}
		out = append(out, c)
	}
	return out
}
