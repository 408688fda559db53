package client

import (
	"slices"
	"testing"
)

func TestClientProps(t *testing.T) {
	var p ClientProps
	for k, v := range map[string]string{
		"bootstrap.servers": " a:9092, b:9093 ,",
		"client.id":         "billing",
		"security.protocol": "ssl",
	} {
		if !p.Take(k, v) {
			t.Errorf("%s not taken", k)
		}
	}
	if p.Take("linger.ms", "5") {
		t.Error("linger.ms taken")
	}
	if !slices.Equal(p.BootstrapServers, []string{"a:9092", "b:9093"}) || p.ClientID != "billing" {
		t.Errorf("servers %q, client.id %q", p.BootstrapServers, p.ClientID)
	}
	tlsCfg, sasl := p.Resolve(func(key, format string, args ...any) { t.Errorf("%s: "+format, append([]any{key}, args...)...) })
	if tlsCfg == nil || sasl != nil {
		t.Errorf("security.protocol=ssl: TLS %v, SASL %v", tlsCfg, sasl)
	}
}
