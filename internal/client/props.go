package client

import "github.com/kafkit/kafkit/internal/props"

// ClientProps gathers the keys with which every Java client reaches the
// cluster, which the producer, consumer and admin loaders share:
// bootstrap.servers, client.id and the security keys (SecurityProps).
type ClientProps struct {
	BootstrapServers []string // bootstrap.servers, split at commas
	ClientID         string   // client.id
	SecurityProps
}

// Take records key when it is one of these keys and reports whether it was.
func (p *ClientProps) Take(key, value string) bool {
	switch key {
	case "bootstrap.servers":
		p.BootstrapServers = props.List(value)
	case "client.id":
		p.ClientID = value
	default:
		return p.SecurityProps.Take(key, value)
	}
	return true
}
