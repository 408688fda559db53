// Package testutil holds the helpers kafkit's cross-component tests share:
// the Kafka clusters a suite runs against (our broker, franz-go's kfake, an
// external cluster from KAFKA_BOOTSTRAP, Apache Kafka in a container where a
// Docker engine answers).
package testutil

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dockercontainer "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kafkit/kafkit/broker"
)

// Target is a Kafka cluster a test runs against.
type Target struct {
	Name      string   // kafkit, kfake, external, apache-kafka
	Bootstrap []string // seed addresses
	// Broker is our broker for the kafkit target (tests may restart it);
	// nil for the others.
	Broker *broker.Broker
}

// Target names; KAFKIT_TARGETS=kafkit,kfake picks a subset.
const (
	Kafkit      = "kafkit"
	Kfake       = "kfake"
	External    = "external"
	ApacheKafka = "apache-kafka"
)

// KafkaImage is the Apache Kafka image the container target runs (KRaft,
// single node).
const KafkaImage = "apache/kafka:3.9.1"

func wanted(name string) bool {
	list := os.Getenv("KAFKIT_TARGETS")
	if list == "" {
		return true
	}
	for _, n := range strings.Split(list, ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

// ForEachTarget runs fn as a subtest against every target: a fresh kafkit
// broker and a fresh kfake cluster per call; the external cluster when
// KAFKA_BOOTSTRAP is set; a shared Apache Kafka container when a Docker
// engine answers (skipped with the reason otherwise). Tests against the
// shared clusters must use unique topic and group names.
func ForEachTarget(t *testing.T, fn func(t *testing.T, tg Target)) {
	t.Helper()
	if wanted(Kafkit) {
		t.Run(Kafkit, func(t *testing.T) {
			b := broker.NewTest(t)
			fn(t, Target{Name: Kafkit, Bootstrap: []string{b.Addr()}, Broker: b})
		})
	}
	if wanted(Kfake) {
		t.Run(Kfake, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			fn(t, Target{Name: Kfake, Bootstrap: c.ListenAddrs()})
		})
	}
	if wanted(External) {
		t.Run(External, func(t *testing.T) {
			seeds := os.Getenv("KAFKA_BOOTSTRAP")
			if seeds == "" {
				t.Skip("KAFKA_BOOTSTRAP is not set: no external cluster to test against")
			}
			fn(t, Target{Name: External, Bootstrap: strings.Split(seeds, ",")})
		})
	}
	if wanted(ApacheKafka) {
		t.Run(ApacheKafka, func(t *testing.T) {
			seeds := apacheKafka(t)
			fn(t, Target{Name: ApacheKafka, Bootstrap: seeds})
		})
	}
}

// container is the Apache Kafka container shared by every test of one test
// binary; Shutdown (from TestMain) stops it.
var kafkaContainer struct {
	once  sync.Once
	c     testcontainers.Container
	seeds []string
	err   error
}

func apacheKafka(t *testing.T) []string {
	t.Helper()
	if os.Getenv("KAFKIT_TESTCONTAINERS") == "0" {
		t.Skip("KAFKIT_TESTCONTAINERS=0: Apache Kafka container disabled")
	}
	if !dockerAvailable() {
		t.Skip("no Docker engine answers (DOCKER_HOST or /var/run/docker.sock): Apache Kafka via testcontainers skipped")
	}
	kafkaContainer.once.Do(func() {
		kafkaContainer.seeds, kafkaContainer.err = startKafkaContainer()
	})
	if kafkaContainer.err != nil {
		t.Skipf("Docker answered but the Apache Kafka container did not start: %v", kafkaContainer.err)
	}
	return kafkaContainer.seeds
}

// startKafkaContainer runs Apache Kafka with its client listener published
// on a free host port chosen first, so the advertised address is known before
// the broker starts.
func startKafkaContainer() ([]string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hostPort := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		Started: true,
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        KafkaImage,
			ExposedPorts: []string{"9092/tcp"},
			Env: map[string]string{
				"KAFKA_NODE_ID":                                  "1",
				"KAFKA_PROCESS_ROLES":                            "broker,controller",
				"KAFKA_LISTENERS":                                "PLAINTEXT://:9092,CONTROLLER://:9093",
				"KAFKA_ADVERTISED_LISTENERS":                     "PLAINTEXT://127.0.0.1:" + hostPort,
				"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
				"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
				"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@localhost:9093",
				"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
				"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
				"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
				"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
			},
			HostConfigModifier: func(hc *dockercontainer.HostConfig) {
				hc.PortBindings = network.PortMap{
					network.MustParsePort("9092/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}},
				}
			},
			WaitingFor: wait.ForLog("Kafka Server started").WithStartupTimeout(2 * time.Minute),
		},
	})
	if err != nil {
		return nil, err
	}
	kafkaContainer.c = c
	return []string{"127.0.0.1:" + hostPort}, nil
}

// dockerAvailable asks testcontainers whether a Docker engine answers,
// without letting it panic or hang when none is installed.
func dockerAvailable() (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if os.Getenv("DOCKER_HOST") == "" {
		if _, err := os.Stat("/var/run/docker.sock"); err != nil {
			return false
		}
	}
	p, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return false
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Health(ctx) == nil
}

// Shutdown stops the shared Apache Kafka container, if one was started.
// Call it from TestMain after m.Run.
func Shutdown() {
	if kafkaContainer.c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		kafkaContainer.c.Terminate(ctx)
	}
}
