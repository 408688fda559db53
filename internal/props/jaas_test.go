package props

import (
	"slices"
	"testing"
)

func TestJAASOptions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []JAASOption
	}{
		{`org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="a\"b" user_admin="x" user_bob.smith="";`,
			[]JAASOption{{"username", "admin"}, {"password", `a"b`}, {"user_admin", "x"}, {"user_bob.smith", ""}}},
		{`x required unsecuredValidatorRequiredScope = "a b"  debug=true;`, []JAASOption{{"unsecuredValidatorRequiredScope", "a b"}}},
		{`org.apache.kafka.common.security.plain.PlainLoginModule required;`, nil},
	} {
		if got := JAASOptions(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("JAASOptions(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
