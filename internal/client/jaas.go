package client

import (
	"errors"
	"regexp"
	"strings"
)

// jaasOption matches username="..." or password="..." (with \" escapes) in a
// JAAS login module line.
var jaasOption = regexp.MustCompile(`(username|password)\s*=\s*"((?:[^"\\]|\\.)*)"`)

// ParseJAAS reads the username and password of a sasl.jaas.config value
// such as `org.apache.kafka.common.security.plain.PlainLoginModule required
// username="u" password="p";` (PlainLoginModule or ScramLoginModule), the
// way Java clients configure SASL; producer, consumer and admin property
// loaders share it.
func ParseJAAS(s string) (user, pass string, err error) {
	for _, m := range jaasOption.FindAllStringSubmatch(s, -1) {
		v := strings.ReplaceAll(m[2], `\"`, `"`)
		if m[1] == "username" {
			user = v
		} else {
			pass = v
		}
	}
	if user == "" {
		return "", "", errors.New(`no username="..." option`)
	}
	return user, pass, nil
}
