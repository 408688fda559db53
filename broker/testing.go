package broker

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// TestOption adjusts the Config NewTest starts from.
type TestOption func(*Config)

// WithConfig lets a test set any field, e.g. small segments for retention.
func WithConfig(fn func(*Config)) TestOption { return TestOption(fn) }

// OnDisk keeps the logs in a temporary directory (removed at cleanup)
// instead of memory.
func OnDisk() TestOption {
	return func(c *Config) { c.InMemory = false }
}

// WithAuthorizer turns the authorizer on (StandardAuthorizer's rules) with
// superUsers (super.users, "User:a;User:b").
func WithAuthorizer(superUsers string) TestOption {
	return func(c *Config) { c.AuthorizerClassName, c.SuperUsers = standardAuthorizerClass, superUsers }
}

// WithTestPrincipal names each request's principal ("User:alice") from its
// client id with fn, as SASL or TLS would name the connection's, so tests
// exercise ACLs with several principals on one unsecured listener.
// Test-only; an authenticated connection keeps its own principal.
func WithTestPrincipal(fn func(clientID string) string) TestOption {
	return func(c *Config) { c.testPrincipal = fn }
}

// NewTest starts a broker for a test on a random 127.0.0.1 port, in memory
// by default, with Kafka's single-node development settings (replication
// factors of 1, no initial rebalance delay). It is closed and its data removed
// by t.Cleanup. Logs go to t.Log at warn level and above. It returns once
// the group and transaction coordinators have loaded.
func NewTest(t testing.TB, opts ...TestOption) *Broker {
	t.Helper()
	cfg := DefaultConfig()
	if err := cfg.Set(DevOverrides); err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.InMemory = true
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, o := range opts {
		o(&cfg)
	}
	if !cfg.InMemory && cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("broker.NewTest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("closing test broker: %v", err)
		}
	})
	// A test's first group or transactional request must not race the
	// coordinators' load (COORDINATOR_LOAD_IN_PROGRESS): clients retry it,
	// but a test sending raw requests would flake.
	select {
	case <-b.coord.txnsLoaded:
	case <-time.After(30 * time.Second):
		t.Fatal("broker.NewTest: the group and transaction coordinators did not load within 30s")
	}
	return b
}

// testWriter sends slog output to t.Log so it shows with the failing test.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
