package cli

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kafkit/kafkit/broker"
)

// kafka-storage.sh format --add-scram: the broker started on that log
// directory logs the user in, with the password given or with the salted
// password and salt given in base64.
func TestStorageFormatAddSCRAM(t *testing.T) {
	dir := t.TempDir()
	props := filepath.Join(dir, "server.properties")
	logs := filepath.Join(dir, "logs")
	if err := os.WriteFile(props, []byte("node.id=1\nlisteners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0\nlog.dirs="+logs+"\n"+
		"sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512\n"+
		"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;\n"+
		"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		{"--add-scram", "SCRAM-SHA-256=name=alice"},
		{"--add-scram", "SCRAM-SHA-1=[name=alice,password=pw]"},
		{"--add-scram", "SCRAM-SHA-256=[name=alice]"},
		{"--add-scram", "SCRAM-SHA-256=[name=alice,password=pw,iterations=100]"},
	} {
		if r := tool(t, "kafka-storage.sh", "", append([]string{"format", "-t", "AAAAAAAAAAAAAAAAAAAAAA", "-c", props}, bad...)...); r.code == 0 {
			t.Errorf("format %v succeeded", bad)
		}
	}
	os.RemoveAll(logs)
	salt := []byte("bob's salt")
	salted, err := pbkdf2.Key(sha512.New, "bob-secret", salt, 8192, sha512.Size)
	if err != nil {
		t.Fatal(err)
	}
	toolOK(t, "kafka-storage.sh", "", "format", "-t", "AAAAAAAAAAAAAAAAAAAAAA", "-c", props,
		"--add-scram", "SCRAM-SHA-256=[name=alice,password=alice-secret]",
		"--add-scram", `SCRAM-SHA-512=[name=bob,iterations=8192,salt="`+base64.StdEncoding.EncodeToString(salt)+`",saltedpassword="`+base64.StdEncoding.EncodeToString(salted)+`"]`)

	b := startFromProperties(t, props)
	login := func(m scram.Auth, sha512 bool) error {
		mech := m.AsSha256Mechanism()
		if sha512 {
			mech = m.AsSha512Mechanism()
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.ListenerAddr(broker.ProtocolSASLPlaintext)), kgo.SASL(mech))
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cl.Ping(ctx)
	}
	if err := login(scram.Auth{User: "alice", Pass: "alice-secret"}, false); err != nil {
		t.Errorf("alice: %v", err)
	}
	if err := login(scram.Auth{User: "alice", Pass: "wrong"}, false); err == nil || !strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED") {
		t.Errorf("alice with a wrong password: %v", err)
	}
	if err := login(scram.Auth{User: "bob", Pass: "bob-secret"}, true); err != nil {
		t.Errorf("bob (salted password given): %v", err)
	}
}

// startFromProperties starts a broker from the server.properties at path,
// as cmd/broker would after kafka-storage format, closed when t ends.
func startFromProperties(t *testing.T, path string) *broker.Broker {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := broker.ReadProperties(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := broker.ConfigFromProperties(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}
