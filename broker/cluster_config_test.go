package broker

import (
	"context"
	"strings"
	"testing"
)

// A Kafka combined-mode server.properties configures a cluster node.
func TestClusterConfigKeys(t *testing.T) {
	cfg, unknown, err := ConfigFromProperties(map[string]string{
		"process.roles":                  "broker,controller",
		"node.id":                        "2",
		"controller.quorum.voters":       "1@127.0.0.1:19093,2@127.0.0.1:19094,3@127.0.0.1:19095",
		"listeners":                      "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19094",
		"advertised.listeners":           "PLAINTEXT://localhost:19092",
		"controller.listener.names":      "CONTROLLER",
		"inter.broker.listener.name":     "PLAINTEXT",
		"listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"broker.rack":                    "r1",
		"broker.heartbeat.interval.ms":   "500",
		"broker.session.timeout.ms":      "3000",
		"log.dirs":                       t.TempDir(),
	})
	if err != nil || len(unknown) != 0 {
		t.Fatalf("err %v, unknown %v", err, unknown)
	}
	if !cfg.clusterMode() || cfg.BrokerID != 2 || cfg.Listen != "127.0.0.1:19092" || cfg.controllerListen() != "127.0.0.1:19094" ||
		cfg.BrokerRack != "r1" || cfg.BrokerHeartbeatIntervalMs != 500 || cfg.BrokerSessionTimeoutMs != 3000 {
		t.Errorf("cfg = %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if p := cfg.peerOverrides(); len(p) != 0 {
		t.Errorf("overrides without the key %v", p)
	}
	if err := cfg.Set(map[string]string{"kafkit.peer.address.overrides": "3@127.0.0.1:29095"}); err != nil || cfg.Validate() != nil {
		t.Fatalf("overrides: %v, %v", err, cfg.Validate())
	}
	if p := cfg.peerOverrides(); len(p) != 1 || p[3] != "127.0.0.1:29095" || cfg.voters()[3] != "127.0.0.1:19095" {
		t.Errorf("overrides with node 3 overridden %v (voters %v)", p, cfg.voters())
	}

	// Kafka's shipped single-node file: one voter, itself. No cluster.
	single, _, err := ConfigFromProperties(map[string]string{
		"process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@localhost:9093",
		"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER", "log.dirs": "/tmp/x",
		"advertised.listeners": "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093",
	})
	if err != nil || single.clusterMode() || single.Validate() != nil || single.Listen != ":9092" || single.AdvertisedAddr != "localhost:9092" {
		t.Errorf("single node: err %v, cluster %v, validate %v, %+v", err, single.clusterMode(), single.Validate(), single)
	}
	// A controller-only node of a Kafka production layout: its one
	// listener is the controller's, and inter.broker.listener.name left
	// in from a broker's file does not matter, as in Kafka. A single
	// controller-only voter is a cluster too: its brokers are other nodes.
	for _, voters := range []string{"1@127.0.0.1:19093,2@127.0.0.1:19094,3@127.0.0.1:19095", "1@127.0.0.1:19093"} {
		ctl, unknown, err := ConfigFromProperties(map[string]string{
			"process.roles": "controller", "node.id": "1", "controller.quorum.voters": voters,
			"listeners": "CONTROLLER://127.0.0.1:19093", "controller.listener.names": "CONTROLLER",
			"listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT", "inter.broker.listener.name": "PLAINTEXT",
			"log.dirs": t.TempDir(),
		})
		if err != nil || len(unknown) != 0 || !ctl.controllerOnly() || !ctl.clusterMode() || ctl.controllerListen() != "127.0.0.1:19093" {
			t.Errorf("controller-only under %s: err %v, unknown %v, %+v", voters, err, unknown, ctl)
		}
		if err := ctl.Validate(); err != nil {
			t.Errorf("controller-only under %s: Validate: %v", voters, err)
		}
	}
	if d := DefaultConfig(); d.clusterMode() {
		t.Error("the default config must be the single node")
	}
}

func TestClusterConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		props map[string]string
		key   string
	}{
		{map[string]string{"process.roles": "broker,zookeeper"}, "process.roles:"},
		{map[string]string{"controller.quorum.voters": "1@host"}, "controller.quorum.voters:"},
		{map[string]string{"controller.quorum.voters": "x@host:1"}, "controller.quorum.voters:"},
		{map[string]string{"listeners": "CONTROLLER://:9093"}, "listener.security.protocol.map:"},
		{map[string]string{"process.roles": "broker,controller", "controller.listener.names": "CONTROLLER", "listeners": "CONTROLLER://:9093"}, "listeners:"},
		{map[string]string{"broker.session.timeout.ms": "0"}, "broker.session.timeout.ms:"},
	} {
		cfg, _, err := ConfigFromProperties(tc.props)
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%v: err %v, want it to name %s", tc.props, err, tc.key)
		}
	}
	for _, tc := range []struct {
		props map[string]string
		key   string
	}{
		{map[string]string{"process.roles": "broker,controller", "node.id": "4", "controller.quorum.voters": "1@h:1,2@h:2"}, "controller.quorum.voters: If process.roles contains the 'controller' role, the node id 4 must be included in the set of voters"},
		{map[string]string{"process.roles": "controller", "node.id": "4", "controller.quorum.voters": "1@h:1,2@h:2", "listeners": "CONTROLLER://:9093"}, "controller.quorum.voters: If process.roles contains the 'controller' role, the node id 4 must be included"},
		{map[string]string{"process.roles": "broker", "node.id": "1", "controller.quorum.voters": "1@h:1,2@h:2", "controller.listener.names": "CONTROLLER"}, "controller.quorum.voters: If process.roles contains just the 'broker' role, the node id 1 must not be included"},
		{map[string]string{"process.roles": "broker", "node.id": "4", "controller.quorum.voters": "1@h:1,2@h:2"}, "controller.listener.names: controller.listener.names must contain at least one value when running KRaft with just the broker role"},
		{map[string]string{"process.roles": "broker", "node.id": "4", "controller.quorum.voters": "1@h:1,2@h:2", "controller.listener.names": "CONTROLLER", "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093"}, "controller.listener.names: controller.listener.names must not contain a value appearing in the 'listeners' configuration"},
		{map[string]string{"process.roles": "controller", "node.id": "1", "controller.quorum.voters": "1@h:1,2@h:2", "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093"}, "listeners: The listeners config must only contain KRaft controller listeners from controller.listener.names when process.roles=controller"},
		{map[string]string{"process.roles": "controller", "node.id": "1", "controller.quorum.voters": "1@h:1,2@h:2"}, "controller.listener.names: controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role"},
		{map[string]string{"process.roles": "controller", "node.id": "1", "controller.quorum.voters": "1@h:1,2@h:2", "listeners": "CONTROLLER://:9093", "controller.listener.names": "CONTROLLER,CTL2", "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,CTL2:PLAINTEXT"}, "controller.listener.names: controller.listener.names must only contain values appearing in the 'listeners' configuration when running the KRaft controller role"},
		{map[string]string{"process.roles": "broker,controller"}, "controller.quorum.voters: a cluster node needs its controllers"},
		{map[string]string{"process.roles": "broker", "node.id": "4", "controller.quorum.bootstrap.servers": "h:1,h:2", "controller.listener.names": "CONTROLLER"}, "controller.quorum.bootstrap.servers: a broker-only node of a dynamic quorum"},
		{map[string]string{"process.roles": "broker,controller", "node.id": "1", "controller.quorum.bootstrap.servers": "h:1,h:2", "listeners": "PLAINTEXT://:9092"}, "controller.listener.names: controller.listener.names must contain at least one value appearing in the 'listeners' configuration"},
		{map[string]string{"process.roles": "controller", "node.id": "1", "controller.quorum.bootstrap.servers": "h:1,h:2", "listeners": "CONTROLLER://:9093", "kafkit.peer.address.overrides": "2@h:3"}, "kafkit.peer.address.overrides: not supported with a dynamic quorum"},
		{map[string]string{"process.roles": "controller", "node.id": "1", "controller.quorum.bootstrap.servers": "h:1,h:2", "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093"}, "listeners: The listeners config must only contain KRaft controller listeners"},
		{map[string]string{"process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@h:1,2@h:2", "broker.session.timeout.ms": "1000"}, "broker.session.timeout.ms:"},
		{map[string]string{"kafkit.peer.address.overrides": "2@h"}, "kafkit.peer.address.overrides:"},
		{map[string]string{"process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@h:1,2@h:2", "kafkit.peer.address.overrides": "3@h:3"}, "kafkit.peer.address.overrides: node 3"},
		{map[string]string{"process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@h:1,2@h:2", "kafkit.peer.address.overrides": "1@h:3"}, "kafkit.peer.address.overrides: node 1"},
		{map[string]string{"process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@h:1,2@h:2", "replica.lag.time.max.ms": "400"}, "replica.fetch.wait.max.ms:"},
	} {
		tc.props["log.dirs"] = "/tmp/x"
		cfg, _, err := ConfigFromProperties(tc.props)
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%v: err %v, want it to name %s", tc.props, err, tc.key)
		}
	}
}

// A log directory formatted for another node is refused, as Kafka does.
func TestMetaPropertiesNodeIDMismatch(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.BrokerID = "127.0.0.1:0", dir, 1
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.Close(context.Background())
	data, _ := readFile(b.fs, dir+"/meta.properties")
	props, _ := ReadProperties(strings.NewReader(string(data)))
	if props["node.id"] != "1" || props["version"] != "1" || props["cluster.id"] != b.ClusterID() || props["directory.id"] == "" {
		t.Errorf("meta.properties = %q", data)
	}
	cfg.BrokerID = 2
	if b, err := New(cfg); err == nil {
		b.Close(context.Background())
		t.Fatal("a directory of node 1 started as node 2")
	} else if !strings.Contains(err.Error(), "stored node id 1 doesn't match the configured node.id 2") {
		t.Errorf("err = %v", err)
	}
}
