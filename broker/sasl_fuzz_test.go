package broker

import (
	"context"
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/auth"
)

// FuzzSASLExchange feeds arbitrary sequences of frames through a SASL
// connection's authenticator (handshake, SaslAuthenticate rounds, raw v0
// tokens, re-authentication): it must never panic, and each frame is
// answered or closes the connection. The input is frames, each a 2-byte
// length and its bytes.
func FuzzSASLExchange(f *testing.F) {
	b := NewTest(f, WithListener(ProtocolSASLPlaintext), WithPlainUser("alice", "pw"),
		WithSCRAMUser(auth.MechanismSCRAMSHA256, "bob", "pw"),
		WithConfig(func(c *Config) {
			c.Logger = slog.New(slog.DiscardHandler)
			c.FailedAuthenticationDelayMs = 0
			c.ConnectionsMaxReauthMs = 60_000
		}))
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	frame := func(req kmsg.Request, version int16) []byte {
		req.SetVersion(version)
		return fm.AppendRequest(nil, req, 1)[4:]
	}
	handshake := func(mech string, v int16) []byte {
		r := kmsg.NewPtrSASLHandshakeRequest()
		r.Mechanism = mech
		return frame(r, v)
	}
	authenticate := func(token string, v int16) []byte {
		r := kmsg.NewPtrSASLAuthenticateRequest()
		r.SASLAuthBytes = []byte(token)
		return frame(r, v)
	}
	join := func(frames ...[]byte) []byte {
		var out []byte
		for _, fr := range frames {
			out = binary.BigEndian.AppendUint16(out, uint16(len(fr)))
			out = append(out, fr...)
		}
		return out
	}
	plain := authenticate("\x00alice\x00pw", 2)
	f.Add(join(frame(kmsg.NewPtrApiVersionsRequest(), 3), handshake("PLAIN", 1), plain, handshake("PLAIN", 1), plain, frame(kmsg.NewPtrMetadataRequest(), 12)))
	f.Add(join(handshake("PLAIN", 0), []byte("\x00alice\x00pw"), frame(kmsg.NewPtrMetadataRequest(), 1)))
	f.Add(join(handshake("SCRAM-SHA-256", 1), authenticate("n,,n=bob,r=abcdefgh", 2), authenticate("c=biws,r=abcdefgh,p=AAAA", 2)))
	f.Add(join(handshake("OAUTHBEARER", 1), authenticate("n,,\x01auth=Bearer a.b.\x01\x01", 1), authenticate("\x01", 1)))
	f.Add(join(handshake("GSSAPI", 1)))
	sl := b.listener(ProtocolSASLPlaintext).sasl
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		c := &conn{b: b, ctx: ctx, log: b.log, host: "127.0.0.1", principal: anonymousPrincipal, listener: ProtocolSASLPlaintext, sasl: &saslConn{l: sl}}
		for n := 0; n < 8 && len(data) >= 2; n++ {
			size := int(binary.BigEndian.Uint16(data))
			data = data[2:]
			if size > len(data) {
				size = len(data)
			}
			fr := data[:size]
			data = data[size:]
			if len(fr) < minRequestSize {
				return // the read loop closes on a short frame
			}
			out, err := c.serve(fr)
			if out != nil {
				out.release()
			}
			if err != nil {
				return
			}
		}
	})
}
