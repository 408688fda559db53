package client

import (
	"context"
	"net"
)

// Login runs a new connection's handshake, ApiVersions and then SASL with
// s, on nc, a connection to addr that the caller goes on using for
// another protocol: a kafkit node's Raft stream to a SASL controller
// listener logs in this way before it switches to Raft
// (internal/metadata). nc's deadline bounds it.
func Login(ctx context.Context, nc net.Conn, addr string, s *SASL) error {
	cfg := Config{ClientID: "kafkit-raft", SASL: s}.withDefaults()
	return newConn(nc, -1, addr, &cfg).handshake(ctx, &cfg, addr)
}
