package client

import (
	"errors"

	"github.com/kafkit/kafkit/internal/props"
)

// ParseJAAS reads the username and password of a sasl.jaas.config value
// such as `org.apache.kafka.common.security.plain.PlainLoginModule required
// username="u" password="p";` (PlainLoginModule or ScramLoginModule), the
// way Java clients configure SASL; producer, consumer and admin property
// loaders share it.
func ParseJAAS(s string) (user, pass string, err error) {
	for _, o := range props.JAASOptions(s) {
		switch o.Key {
		case "username":
			user = o.Value
		case "password":
			pass = o.Value
		}
	}
	if user == "" {
		return "", "", errors.New(`no username="..." option`)
	}
	return user, pass, nil
}
