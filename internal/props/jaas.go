package props

import (
	"regexp"
	"strings"
)

// jaasOption matches one key="value" option (with \" escapes) of a JAAS
// login module line.
var jaasOption = regexp.MustCompile(`([A-Za-z0-9_.\-]+)\s*=\s*"((?:[^"\\]|\\.)*)"`)

// JAASOption is one key="value" option of a sasl.jaas.config value.
type JAASOption struct{ Key, Value string }

// JAASOptions returns the quoted options of a sasl.jaas.config value such as
// `org.apache.kafka.common.security.plain.PlainLoginModule required
// username="u" password="p" user_alice="pw";`, in order, with \" unescaped.
// Clients read username/password from it; the broker reads PLAIN's
// user_<name> entries and OAUTHBEARER's unsecuredValidator* options.
func JAASOptions(s string) []JAASOption {
	var opts []JAASOption
	for _, m := range jaasOption.FindAllStringSubmatch(s, -1) {
		opts = append(opts, JAASOption{m[1], strings.ReplaceAll(m[2], `\"`, `"`)})
	}
	return opts
}
