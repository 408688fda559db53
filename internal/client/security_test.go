package client

import (
	"fmt"
	"strings"
	"testing"
)

func TestSecurityProps(t *testing.T) {
	for _, tc := range []struct {
		props   map[string]string
		tls     bool
		sasl    string // "mechanism user pass", "" for none
		badKeys string
	}{
		{props: nil},
		{props: map[string]string{"security.protocol": "ssl"}, tls: true},
		{props: map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
			"sasl.jaas.config": `org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";`},
			tls: true, sasl: "SCRAM-SHA-512 u p"},
		{props: map[string]string{"sasl.username": "u", "sasl.password": "p"}, sasl: "PLAIN u p"},
		{props: map[string]string{"security.protocol": "SASL_PLAINTEXT"}, sasl: "PLAIN  ", badKeys: "sasl.jaas.config"},
		{props: map[string]string{"security.protocol": "KERBEROS"}, badKeys: "security.protocol"},
	} {
		var s SecurityProps
		for k, v := range tc.props {
			if !s.Take(k, v) {
				t.Fatalf("%s not taken", k)
			}
		}
		var bad []string
		gotTLS, gotSASL := s.Resolve(func(key, format string, args ...any) { bad = append(bad, key) })
		if strings.Join(bad, ",") != tc.badKeys || (gotTLS != nil) != tc.tls {
			t.Errorf("%v: bad keys %v, tls %v", tc.props, bad, gotTLS != nil)
		}
		got := ""
		if gotSASL != nil {
			got = fmt.Sprintf("%s %s %s", gotSASL.Mechanism, gotSASL.User, gotSASL.Password)
		}
		if got != tc.sasl {
			t.Errorf("%v: sasl %q, want %q", tc.props, got, tc.sasl)
		}
	}
	var s SecurityProps
	if s.Take("acks", "all") {
		t.Error("acks taken as a security key")
	}
}
