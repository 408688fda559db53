package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/kafkit/kafkit/internal/storage"
)

// Config is the broker's configuration, with Kafka's server.properties keys
// named on each field. Build one with DefaultConfig (Kafka's defaults) or
// ConfigFromProperties, then adjust fields; New validates it.
type Config struct {
	BrokerID       int64  // broker.id / node.id
	Listen         string // the one PLAINTEXT listener (host:port) when Listeners is empty; ":0" or "127.0.0.1:0" picks a free port
	AdvertisedAddr string // the first listener's advertised address when AdvertisedListeners is empty; empty means the bound address
	DataDir        string // log.dirs
	InMemory       bool   // keep every log in memory (tests, --in-memory); DataDir is ignored
	ClusterID      string // cluster.id; generated when empty

	NumPartitions            int64 // num.partitions
	DefaultReplicationFactor int64 // default.replication.factor
	AutoCreateTopics         bool  // auto.create.topics.enable
	DeleteTopicEnable        bool  // delete.topic.enable

	RetentionHours           int64  // log.retention.hours
	RetentionMinutes         *int64 // log.retention.minutes
	RetentionMs              *int64 // log.retention.ms
	RetentionBytes           int64  // log.retention.bytes
	SegmentBytes             int64  // log.segment.bytes
	RollHours                int64  // log.roll.hours
	RollMs                   *int64 // log.roll.ms
	RetentionCheckIntervalMs int64  // log.retention.check.interval.ms
	FlushMessages            int64  // log.flush.interval.messages
	FlushMs                  *int64 // log.flush.interval.ms
	IndexIntervalBytes       int64  // log.index.interval.bytes
	IndexSizeMaxBytes        int64  // log.index.size.max.bytes
	MessageTimestampType     string // log.message.timestamp.type
	MessageTimestampBeforeMs int64  // log.message.timestamp.before.max.ms
	MessageTimestampAfterMs  int64  // log.message.timestamp.after.max.ms
	CleanupPolicy            string // log.cleanup.policy
	CompressionType          string // compression.type
	MinInsyncReplicas        int64  // min.insync.replicas
	SocketRequestMaxBytes    int64  // socket.request.max.bytes
	MessageMaxBytes          int64  // message.max.bytes
	ConnectionsMaxIdleMs     int64  // connections.max.idle.ms
	FetchSessionCacheSlots   int64  // max.incremental.fetch.session.cache.slots
	MaxRequestPartitionLimit int64  // max.request.partition.size.limit
	LogMaxOpenFiles          int64  // log.max.open.files: segment and index files held open at once

	CleanerEnable            bool    // log.cleaner.enable
	CleanerBackoffMs         int64   // log.cleaner.backoff.ms: pause between cleaner passes
	CleanerDeleteRetentionMs int64   // log.cleaner.delete.retention.ms
	CleanerMinCleanableRatio float64 // log.cleaner.min.cleanable.ratio
	CleanerMinCompactionLag  int64   // log.cleaner.min.compaction.lag.ms
	CleanerMaxCompactionLag  int64   // log.cleaner.max.compaction.lag.ms

	OffsetsTopicReplicationFactor int64 // offsets.topic.replication.factor
	OffsetsTopicNumPartitions     int64 // offsets.topic.num.partitions
	OffsetsRetentionMinutes       int64 // offsets.retention.minutes
	OffsetsRetentionCheckMs       int64 // offsets.retention.check.interval.ms
	OffsetMetadataMaxBytes        int64 // offset.metadata.max.bytes
	GroupInitialRebalanceDelayMs  int64 // group.initial.rebalance.delay.ms
	GroupMinSessionTimeoutMs      int64 // group.min.session.timeout.ms
	GroupMaxSessionTimeoutMs      int64 // group.max.session.timeout.ms
	GroupMaxSize                  int64 // group.max.size
	// KIP-848 consumer groups.
	GroupConsumerHeartbeatIntervalMs int64    // group.consumer.heartbeat.interval.ms
	GroupConsumerSessionTimeoutMs    int64    // group.consumer.session.timeout.ms
	GroupConsumerMaxSize             int64    // group.consumer.max.size
	GroupConsumerAssignors           []string // group.consumer.assignors

	TxnStateReplicationFactor   int64 // transaction.state.log.replication.factor
	TxnStateMinISR              int64 // transaction.state.log.min.isr
	TxnStateNumPartitions       int64 // transaction.state.log.num.partitions
	TxnMaxTimeoutMs             int64 // transaction.max.timeout.ms
	TransactionalIDExpirationMs int64 // transactional.id.expiration.ms
	TxnPartitionVerification    bool  // transaction.partition.verification.enable
	ProducerIDExpirationMs      int64 // producer.id.expiration.ms

	Listeners               []Listener        // listeners (NAME://host:port,...); empty: one PLAINTEXT listener on Listen
	AdvertisedListeners     []Listener        // advertised.listeners; a listener not named here advertises its bound address
	ListenerProtocols       map[string]string // listener.security.protocol.map; nil is Kafka's default (each protocol maps to itself)
	ControllerListenerNames []string          // controller.listener.names: parsed and checked, bound by the quorum, not served here
	InterBrokerListenerName string            // inter.broker.listener.name
	// How this node's own connections log in to other nodes (peer_security.go).
	InterBrokerProtocol      string // security.inter.broker.protocol
	SASLMechanismInterBroker string // sasl.mechanism.inter.broker.protocol
	SASLMechanismController  string // sasl.mechanism.controller.protocol

	SSL                         SSLConfig // ssl.*: every TLS listener's settings unless it overrides them
	SASLEnabledMechanisms       []string  // sasl.enabled.mechanisms
	ConnectionsMaxReauthMs      int64     // connections.max.reauth.ms
	FailedAuthenticationDelayMs int64     // connection.failed.authentication.delay.ms
	// ListenerConfigs holds the listener.name.<listener>.<key> keys:
	// listener name (upper case) → key without the prefix → value.
	ListenerConfigs map[string]map[string]string

	// KRaft cluster keys (cluster_config.go).
	ProcessRoles                 []string // process.roles, sorted; empty: the single-node broker
	QuorumVoters                 string   // controller.quorum.voters (id@host:port,...)
	PeerAddressOverrides         string   // kafkit.peer.address.overrides (id@host:port,...; cluster_config.go)
	QuorumBootstrapServers       string   // controller.quorum.bootstrap.servers
	BrokerRack                   string   // broker.rack
	BrokerHeartbeatIntervalMs    int64    // broker.heartbeat.interval.ms
	BrokerSessionTimeoutMs       int64    // broker.session.timeout.ms
	QuorumElectionTimeoutMs      int64    // controller.quorum.election.timeout.ms
	ShareRecordLockDurationMs    int64    // group.share.record.lock.duration.ms
	ShareMinRecordLockDurationMs int64    // group.share.min.record.lock.duration.ms
	ShareMaxRecordLockDurationMs int64    // group.share.max.record.lock.duration.ms
	ShareMinHeartbeatIntervalMs  int64    // group.share.min.heartbeat.interval.ms
	ShareMaxHeartbeatIntervalMs  int64    // group.share.max.heartbeat.interval.ms
	ShareMinSessionTimeoutMs     int64    // group.share.min.session.timeout.ms
	ShareMaxSessionTimeoutMs     int64    // group.share.max.session.timeout.ms
	ShareDeliveryCountLimit      int64    // group.share.delivery.count.limit
	SharePartitionMaxRecordLocks int64    // group.share.partition.max.record.locks
	ShareHeartbeatIntervalMs     int64    // group.share.heartbeat.interval.ms
	ShareSessionTimeoutMs        int64    // group.share.session.timeout.ms
	ShareMaxSize                 int64    // group.share.max.size
	ShareMaxSessions             int64    // group.share.max.share.sessions
	ShareStateNumPartitions      int64    // share.coordinator.state.topic.num.partitions
	ShareStateReplicationFactor  int64    // share.coordinator.state.topic.replication.factor
	AuthorizerClassName          string   // authorizer.class.name: "" (none) or StandardAuthorizer / AclAuthorizer
	SuperUsers                   string   // super.users: "User:a;User:b"
	AllowEveryoneIfNoACLFound    bool     // allow.everyone.if.no.acl.found
	QuotaWindowNum               int64    // quota.window.num
	QuotaWindowSizeSeconds       int64    // quota.window.size.seconds

	// The active controller's preferred leader elections (cluster_balance.go).
	AutoLeaderRebalanceEnable           bool  // auto.leader.rebalance.enable
	LeaderImbalanceCheckIntervalSeconds int64 // leader.imbalance.check.interval.seconds

	// Replication on a cluster (cluster_replica.go).
	ReplicaLagTimeMaxMs          int64 // replica.lag.time.max.ms
	ReplicaFetchMaxBytes         int64 // replica.fetch.max.bytes
	ReplicaFetchResponseMaxBytes int64 // replica.fetch.response.max.bytes
	ReplicaFetchWaitMaxMs        int64 // replica.fetch.wait.max.ms
	ReplicaFetchMinBytes         int64 // replica.fetch.min.bytes
	ReplicaFetchBackoffMs        int64 // replica.fetch.backoff.ms
	NumReplicaFetchers           int64 // num.replica.fetchers
	ReplicaHWCheckpointMs        int64 // replica.high.watermark.checkpoint.interval.ms

	// Logger receives the broker's logs; nil discards them.
	Logger *slog.Logger

	// wrapFS, when set (by tests), wraps the broker's file system: the
	// storage FS seam through which faults such as ENOSPC are injected.
	wrapFS func(storage.FS) storage.FS
	// copyChunks, when set (by tests and benchmarks), sends zero-copy fetch
	// data by copying it as the platforms without sendfile do.
	copyChunks bool
	// replicationPaused, when set (by tests) and true, fails this node's
	// replica fetches as an unreachable leader would: the seam for a
	// follower that falls behind while staying registered.
	replicationPaused *replicationPause

	// scramUsers are SCRAM credentials NewTest options add at start-up.
	scramUsers []scramUser
	// onPrincipal, when set (by tests), sees each connection's principal
	// once TLS or SASL has established it.
	onPrincipal func(listener, principal string)
	// testPrincipal, when set (WithTestPrincipal), names the principal of
	// each request of an unauthenticated connection from its client id, so
	// that tests exercise ACLs without SASL.
	testPrincipal func(clientID string) string
	// bound, when set (by TestCluster), are listeners already bound, by
	// listener name, that the node serves instead of binding their
	// addresses itself: a test cluster's fixed ports are never free for
	// something else to take between choosing and binding them.
	bound map[string]net.Listener

	// explicit records which keys came from a properties file or a flag, so
	// DescribeConfigs can report STATIC_BROKER_CONFIG for them.
	explicit map[string]string
	// dynamic records the keys set at runtime (AlterConfigs on the broker)
	// with their config source; only the effective config has it.
	dynamic map[string]int8
}

// DefaultConfig returns Kafka's defaults for every key.
func DefaultConfig() Config {
	var c Config
	for _, p := range brokerProps {
		if p.null || p.def == "" {
			continue
		}
		if err := p.set(&c, p.def); err != nil {
			panic(fmt.Sprintf("broker: default of %s: %v", p.key, err)) // a bug in the table, caught by every test
		}
	}
	c.DataDir = ""
	// Kafka's default listeners value is one PLAINTEXT listener: Listen
	// carries it, so callers that set only Listen keep working.
	c.Listeners = nil
	return c
}

// DevOverrides are the values Kafka's own shipped config/server.properties
// sets for a single-node development broker; cmd/broker applies them when it
// runs without --config, since replication factors of 3 cannot be met by one
// broker.
var DevOverrides = map[string]string{
	"offsets.topic.replication.factor":         "1",
	"transaction.state.log.replication.factor": "1",
	"transaction.state.log.min.isr":            "1",
	"group.initial.rebalance.delay.ms":         "0",
}

// ConfigFromProperties starts from DefaultConfig and applies props (the
// contents of a server.properties file). Every invalid value is reported at
// once, each naming its key. Unknown keys are returned as warnings, as Kafka
// logs them, not errors.
func ConfigFromProperties(props map[string]string) (cfg Config, unknown []string, err error) {
	cfg = DefaultConfig()
	err = cfg.Set(props)
	for k := range props {
		if _, ok := brokerPropByKey[k]; !ok && !strings.HasPrefix(k, listenerKeyPrefix) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	return cfg, unknown, err
}

// Set applies known keys of props onto c, returning every invalid value at
// once; unknown keys are ignored (ConfigFromProperties reports them).
func (c *Config) Set(props map[string]string) error {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	// log.dirs must win over log.dir regardless of map order.
	sort.Slice(keys, func(i, j int) bool {
		if (keys[i] == "log.dirs") != (keys[j] == "log.dirs") {
			return keys[i] == "log.dirs"
		}
		return keys[i] < keys[j]
	})
	var errs []error
	for _, k := range keys {
		if isListenerKey, err := c.setListenerKey(k, props[k]); isListenerKey {
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
			continue
		}
		p, ok := brokerPropByKey[k]
		if !ok {
			continue
		}
		if err := p.set(c, props[k]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			continue
		}
		if c.explicit == nil {
			c.explicit = make(map[string]string)
		}
		c.explicit[k] = props[k]
	}
	return errors.Join(errs...)
}

// Validate reports every problem at once, each naming Kafka's key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, err := c.resolvedListeners(); err != nil {
		errs = append(errs, err)
	}
	if c.AdvertisedAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdvertisedAddr); err != nil {
			bad("advertised.listeners", "want host:port, got %q", c.AdvertisedAddr)
		}
	}
	if !c.InMemory && c.DataDir == "" {
		bad("log.dirs", "a data directory is required unless the broker runs in memory")
	}
	for _, p := range brokerProps {
		if p.check != nil {
			if err := p.check(c); err != nil {
				bad(p.key, "%v", err)
			}
		}
	}
	c.validateCluster(bad)
	if c.GroupMinSessionTimeoutMs > c.GroupMaxSessionTimeoutMs {
		bad("group.min.session.timeout.ms", "%d is larger than group.max.session.timeout.ms %d", c.GroupMinSessionTimeoutMs, c.GroupMaxSessionTimeoutMs)
	}
	if c.MessageTimestampType != "CreateTime" && c.MessageTimestampType != "LogAppendTime" {
		bad("log.message.timestamp.type", "must be CreateTime or LogAppendTime, got %q", c.MessageTimestampType)
	}
	return errors.Join(errs...)
}

// retention returns log.retention.{ms,minutes,hours} by Kafka's precedence;
// a negative value means unlimited.
func (c *Config) retention() time.Duration {
	switch {
	case c.RetentionMs != nil:
		return msDuration(*c.RetentionMs)
	case c.RetentionMinutes != nil:
		return msDuration(*c.RetentionMinutes * 60_000)
	default:
		return msDuration(c.RetentionHours * 3_600_000)
	}
}

func (c *Config) retentionMs() int64 {
	if d := c.retention(); d >= 0 {
		return d.Milliseconds()
	}
	return -1
}

func (c *Config) rollMs() int64 {
	if c.RollMs != nil {
		return *c.RollMs
	}
	return c.RollHours * 3_600_000
}

func (c *Config) flushMs() int64 {
	if c.FlushMs != nil {
		return *c.FlushMs
	}
	return maxLong
}

// msDuration turns a Kafka millisecond value into a Duration; negative stays
// negative (unlimited) and huge values saturate instead of overflowing.
func msDuration(ms int64) time.Duration {
	if ms < 0 {
		return -1
	}
	if ms > int64(1<<63-1)/int64(time.Millisecond) {
		return 1<<63 - 1
	}
	return time.Duration(ms) * time.Millisecond
}
