package client

import "testing"

func TestParseJAAS(t *testing.T) {
	for _, tc := range []struct {
		in, user, pass string
		ok             bool
	}{
		{`org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="s3cret";`, "alice", "s3cret", true},
		{`org.apache.kafka.common.security.scram.ScramLoginModule required password="p\"q" username = "bob";`, "bob", `p"q`, true},
		{`org.apache.kafka.common.security.plain.PlainLoginModule required;`, "", "", false},
	} {
		user, pass, err := ParseJAAS(tc.in)
		if (err == nil) != tc.ok || user != tc.user || pass != tc.pass {
			t.Errorf("ParseJAAS(%q) = %q, %q, %v", tc.in, user, pass, err)
		}
	}
}
