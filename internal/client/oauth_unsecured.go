package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/props"
)

// UnsecuredTokenSource makes the unsigned tokens of Kafka's
// OAuthBearerUnsecuredLoginCallbackHandler from a sasl.jaas.config such as
// `org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule
// required unsecuredLoginStringClaim_sub="alice";` (a development
// mechanism: brokers must run the unsecured validator).
// unsecuredLoginLifetimeSeconds (default 3600) sets exp.
func UnsecuredTokenSource(jaas string) (kafkit.TokenSource, error) {
	claims := map[string]any{}
	lifetime := time.Hour
	principalClaim := "sub"
	for _, o := range props.JAASOptions(jaas) {
		switch {
		case o.Key == "unsecuredLoginLifetimeSeconds":
			n, err := strconv.ParseInt(o.Value, 10, 64)
			if err != nil || n <= 0 {
				return nil, errors.New("unsecuredLoginLifetimeSeconds must be a positive integer")
			}
			lifetime = time.Duration(n) * time.Second
		case o.Key == "unsecuredLoginPrincipalClaimName":
			principalClaim = o.Value
		case len(o.Key) > len("unsecuredLoginStringClaim_") && o.Key[:len("unsecuredLoginStringClaim_")] == "unsecuredLoginStringClaim_":
			claims[o.Key[len("unsecuredLoginStringClaim_"):]] = o.Value
		}
	}
	if claims[principalClaim] == nil {
		return nil, errors.New(`OAUTHBEARER needs unsecuredLoginStringClaim_` + principalClaim + `="<principal>"`)
	}
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`))
	return kafkit.TokenSourceFunc(func(context.Context) (string, error) {
		now := time.Now()
		c := map[string]any{"iat": now.Unix(), "exp": now.Add(lifetime).Unix()}
		for k, v := range claims {
			c[k] = v
		}
		body, err := json.Marshal(c)
		return header + "." + base64.RawURLEncoding.EncodeToString(body) + ".", err
	}), nil
}
