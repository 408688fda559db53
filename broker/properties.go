package broker

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// propType is a Kafka config type as DescribeConfigs v3+ reports it.
type propType int8

// Kafka's ConfigType codes (DescribeConfigsResponse ConfigType).
const (
	typeBoolean  propType = 1
	typeString   propType = 2
	typeInt      propType = 3
	typeShort    propType = 4
	typeLong     propType = 5
	typeDouble   propType = 6
	typeList     propType = 7
	typeClass    propType = 8
	typePassword propType = 9
)

// brokerProp is one broker-level key of server.properties. The table below is
// the single source of truth for parsing, validation, defaults and
// DescribeConfigs; Config's typed fields are filled from it.
type brokerProp struct {
	key  string
	typ  propType
	def  string // Kafka's default, as DescribeConfigs shows it ("" with null=true for null)
	null bool
	doc  string
	// set parses v into c; it returns an error that describes the value only
	// (the caller prefixes the key).
	set func(c *Config, v string) error
	// dynamic keys may change at runtime through (Incremental)AlterConfigs.
	dynamic bool
	// check validates the typed field of a Config built in Go rather than
	// parsed (nil when parsing is the only way in).
	check func(c *Config) error
}

func parseInt(v string, min, max int64) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an integer: %q", v)
	}
	return n, inRange(n, min, max)
}

func inRange(n, min, max int64) error {
	if n < min || n > max {
		return fmt.Errorf("value %d out of range [%d, %d]", n, min, max)
	}
	return nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean (true or false): %q", v)
}

func intProp(key string, def int64, min, max int64, doc string, field func(*Config) *int64) brokerProp {
	typ := typeLong
	if max <= math.MaxInt32 {
		typ = typeInt
	}
	return brokerProp{key: key, typ: typ, def: strconv.FormatInt(def, 10), doc: doc, set: func(c *Config, v string) error {
		n, err := parseInt(v, min, max)
		if err == nil {
			*field(c) = n
		}
		return err
	}, check: func(c *Config) error {
		return inRange(*field(c), min, max)
	}}
}

func boolProp(key string, def bool, doc string, field func(*Config) *bool) brokerProp {
	return brokerProp{key: key, typ: typeBoolean, def: strconv.FormatBool(def), doc: doc, set: func(c *Config, v string) error {
		b, err := parseBool(v)
		if err == nil {
			*field(c) = b
		}
		return err
	}}
}

// ignoredProp is a real Kafka key that has no meaning for a single Go
// process (thread pools, KRaft quorum wiring); accepting it lets users keep
// their existing server.properties.
func ignoredProp(key, def, doc string) brokerProp {
	return brokerProp{key: key, typ: typeString, def: def, doc: doc + " (accepted for compatibility; no effect in kafkit)", set: func(*Config, string) error { return nil }}
}

const maxLong = math.MaxInt64

var brokerProps = append([]brokerProp{
	intProp("broker.id", 0, -1, math.MaxInt32, "The broker id of this server.", func(c *Config) *int64 { return &c.BrokerID }),
	intProp("node.id", 0, -1, math.MaxInt32, "KRaft name of broker.id.", func(c *Config) *int64 { return &c.BrokerID }),
	{key: "listeners", typ: typeString, def: "PLAINTEXT://127.0.0.1:9092", doc: "Listeners to bind: NAME://host:port,... (protocols from listener.security.protocol.map).", set: func(c *Config, v string) error {
		ls, err := parseListeners(v)
		if err == nil {
			c.Listeners, c.Listen = ls, ls[0].Addr()
		}
		return err
	}},
	{key: "advertised.listeners", typ: typeString, null: true, doc: "Endpoints given to clients per listener; a listener not named advertises its bound address.", set: func(c *Config, v string) error {
		ls, err := parseListeners(v)
		if err == nil {
			c.AdvertisedListeners, c.AdvertisedAddr = ls, ls[0].Addr()
		}
		return err
	}},
	{key: "log.dirs", typ: typeString, null: true, doc: "Directory holding the log data (one directory).", set: func(c *Config, v string) error {
		dirs := strings.Split(v, ",")
		if len(dirs) != 1 || strings.TrimSpace(dirs[0]) == "" {
			return fmt.Errorf("exactly one directory is supported, got %q", v)
		}
		c.DataDir = strings.TrimSpace(dirs[0])
		return nil
	}},
	{key: "log.dir", typ: typeString, def: "/tmp/kafka-logs", doc: "Used when log.dirs is not set.", set: func(c *Config, v string) error {
		if c.DataDir == "" {
			c.DataDir = strings.TrimSpace(v)
		}
		return nil
	}},
	intProp("num.partitions", 1, 1, math.MaxInt32, "Default partition count of auto-created topics.", func(c *Config) *int64 { return &c.NumPartitions }),
	intProp("default.replication.factor", 1, 1, math.MaxInt16, "Default replication factor of auto-created topics.", func(c *Config) *int64 { return &c.DefaultReplicationFactor }),
	boolProp("auto.create.topics.enable", true, "Create a topic when Metadata or Produce names an unknown one.", func(c *Config) *bool { return &c.AutoCreateTopics }),
	boolProp("delete.topic.enable", true, "Allow DeleteTopics.", func(c *Config) *bool { return &c.DeleteTopicEnable }),
	intProp("log.retention.hours", 168, -1, math.MaxInt32, "Hours to keep a log segment (lowest precedence of the three).", func(c *Config) *int64 { return &c.RetentionHours }),
	{key: "log.retention.minutes", typ: typeInt, null: true, doc: "Minutes to keep a log segment; overrides log.retention.hours.", set: optionalInt(func(c *Config) **int64 { return &c.RetentionMinutes })},
	{key: "log.retention.ms", typ: typeLong, null: true, doc: "Milliseconds to keep a log segment; overrides minutes and hours; -1 is unlimited.", set: optionalInt(func(c *Config) **int64 { return &c.RetentionMs }), dynamic: true},
	intProp("log.retention.bytes", -1, -1, maxLong, "Size above which old segments are deleted; -1 is unlimited.", func(c *Config) *int64 { return &c.RetentionBytes }),
	intProp("log.segment.bytes", 1073741824, 14, math.MaxInt32, "Size of a single log segment file.", func(c *Config) *int64 { return &c.SegmentBytes }),
	intProp("log.roll.hours", 168, 1, math.MaxInt32, "Maximum age of the active segment before a roll.", func(c *Config) *int64 { return &c.RollHours }),
	{key: "log.roll.ms", typ: typeLong, null: true, doc: "Maximum age of the active segment in ms; overrides log.roll.hours.", set: optionalInt(func(c *Config) **int64 { return &c.RollMs })},
	intProp("log.retention.check.interval.ms", 300000, 1, maxLong, "How often retention runs.", func(c *Config) *int64 { return &c.RetentionCheckIntervalMs }),
	intProp("log.flush.interval.messages", maxLong, 1, maxLong, "Messages appended to a partition before an fsync; 1 means every acknowledged batch is on disk.", func(c *Config) *int64 { return &c.FlushMessages }),
	{key: "log.flush.interval.ms", typ: typeLong, null: true, doc: "Maximum time data stays unflushed.", set: optionalInt(func(c *Config) **int64 { return &c.FlushMs })},
	intProp("log.index.interval.bytes", 4096, 0, math.MaxInt32, "Bytes between entries of the offset index.", func(c *Config) *int64 { return &c.IndexIntervalBytes }),
	intProp("log.index.size.max.bytes", 10485760, 4, math.MaxInt32, "Maximum size of an offset index; a full index rolls the segment.", func(c *Config) *int64 { return &c.IndexSizeMaxBytes }),
	{key: "log.message.timestamp.type", typ: typeString, def: "CreateTime", doc: "CreateTime or LogAppendTime.", set: func(c *Config, v string) error {
		if v != "CreateTime" && v != "LogAppendTime" {
			return fmt.Errorf("must be CreateTime or LogAppendTime, got %q", v)
		}
		c.MessageTimestampType = v
		return nil
	}},
	intProp("log.message.timestamp.before.max.ms", maxLong, 0, maxLong, "Under CreateTime, a record whose timestamp is more than this before the broker's clock is refused (INVALID_TIMESTAMP).", func(c *Config) *int64 { return &c.MessageTimestampBeforeMs }),
	intProp("log.message.timestamp.after.max.ms", 3600000, 0, maxLong, "Under CreateTime, a record whose timestamp is more than this after the broker's clock is refused (INVALID_TIMESTAMP).", func(c *Config) *int64 { return &c.MessageTimestampAfterMs }),
	{key: "log.cleanup.policy", typ: typeList, def: "delete", doc: "delete, compact, or compact,delete.", set: func(c *Config, v string) error {
		if err := validateCleanupPolicy(v); err != nil {
			return err
		}
		c.CleanupPolicy = v
		return nil
	}},
	boolProp("log.cleaner.enable", true, "Run the log cleaner, which compacts logs with cleanup.policy=compact.", func(c *Config) *bool { return &c.CleanerEnable }),
	intProp("log.cleaner.backoff.ms", 15000, 0, maxLong, "Pause of the log cleaner when no log needs cleaning.", func(c *Config) *int64 { return &c.CleanerBackoffMs }),
	intProp("log.cleaner.delete.retention.ms", 86400000, 0, maxLong, "Default delete.retention.ms: how long cleaned tombstones stay.", func(c *Config) *int64 { return &c.CleanerDeleteRetentionMs }),
	{key: "log.cleaner.min.cleanable.ratio", typ: typeDouble, def: "0.5", doc: "Default min.cleanable.dirty.ratio.", set: func(c *Config, v string) error {
		r, err := parseRatio(v)
		if err == nil {
			c.CleanerMinCleanableRatio = r
		}
		return err
	}},
	intProp("log.cleaner.min.compaction.lag.ms", 0, 0, maxLong, "Default min.compaction.lag.ms.", func(c *Config) *int64 { return &c.CleanerMinCompactionLag }),
	intProp("log.cleaner.max.compaction.lag.ms", maxLong, 1, maxLong, "Default max.compaction.lag.ms.", func(c *Config) *int64 { return &c.CleanerMaxCompactionLag }),
	{key: "compression.type", typ: typeString, def: "producer", doc: "Final compression of topic data; only producer (keep the producer's codec) is implemented.", set: func(c *Config, v string) error {
		if err := validateCompression(v); err != nil {
			return err
		}
		c.CompressionType = v
		return nil
	}},
	intProp("min.insync.replicas", 1, 1, math.MaxInt32, "Minimum in-sync replicas for acks=all.", func(c *Config) *int64 { return &c.MinInsyncReplicas }),
	intProp("socket.request.max.bytes", 104857600, 1, math.MaxInt32, "Largest request frame accepted; a larger one closes the connection.", func(c *Config) *int64 { return &c.SocketRequestMaxBytes }),
	intProp("message.max.bytes", 1048588, 0, math.MaxInt32, "Largest record batch accepted (topic key max.message.bytes).", func(c *Config) *int64 { return &c.MessageMaxBytes }),
	intProp("connections.max.idle.ms", 600000, -1, maxLong, "Idle connections are closed after this long; -1 never.", func(c *Config) *int64 { return &c.ConnectionsMaxIdleMs }),
	intProp("max.request.partition.size.limit", 2000, 1, math.MaxInt32, "Most partitions one DescribeTopicPartitions response lists.", func(c *Config) *int64 { return &c.MaxRequestPartitionLimit }),
	intProp("log.max.open.files", 8192, 16, math.MaxInt32, "Segment and index files kept open at once (kafkit's own key): the least recently used are closed and reopened on their next use, so partitions that are not in use hold no file descriptor. Keep it well below the process's open-file limit (ulimit -n), which client connections share.", func(c *Config) *int64 { return &c.LogMaxOpenFiles }),
	intProp("max.incremental.fetch.session.cache.slots", 1000, 0, math.MaxInt32, "Fetch sessions (KIP-227) kept at once; 0 answers every fetch sessionless.", func(c *Config) *int64 { return &c.FetchSessionCacheSlots }),
	intProp("offsets.topic.replication.factor", 3, 1, math.MaxInt16, "Replication factor of __consumer_offsets (capped at the broker count).", func(c *Config) *int64 { return &c.OffsetsTopicReplicationFactor }),
	intProp("offsets.topic.num.partitions", 50, 1, math.MaxInt32, "Partitions of __consumer_offsets.", func(c *Config) *int64 { return &c.OffsetsTopicNumPartitions }),
	intProp("offsets.retention.minutes", 10080, 1, math.MaxInt32, "Committed offsets of an empty group are kept this long.", func(c *Config) *int64 { return &c.OffsetsRetentionMinutes }),
	intProp("offsets.retention.check.interval.ms", 600000, 1, maxLong, "How often committed offsets are checked for expiry (offsets.retention.minutes).", func(c *Config) *int64 { return &c.OffsetsRetentionCheckMs }),
	intProp("offset.metadata.max.bytes", 4096, 0, math.MaxInt32, "Longest metadata an offset commit may carry; a longer one fails with OFFSET_METADATA_TOO_LARGE.", func(c *Config) *int64 { return &c.OffsetMetadataMaxBytes }),
	intProp("group.initial.rebalance.delay.ms", 3000, 0, math.MaxInt32, "Wait for more members before the first rebalance of an empty group.", func(c *Config) *int64 { return &c.GroupInitialRebalanceDelayMs }),
	intProp("group.min.session.timeout.ms", 6000, 0, math.MaxInt32, "Smallest session.timeout.ms a member may ask for.", func(c *Config) *int64 { return &c.GroupMinSessionTimeoutMs }),
	intProp("group.max.session.timeout.ms", 1800000, 0, math.MaxInt32, "Largest session.timeout.ms a member may ask for.", func(c *Config) *int64 { return &c.GroupMaxSessionTimeoutMs }),
	intProp("group.max.size", math.MaxInt32, 1, math.MaxInt32, "Maximum members of one group.", func(c *Config) *int64 { return &c.GroupMaxSize }),
	intProp("group.consumer.heartbeat.interval.ms", 5000, 1, math.MaxInt32, "Heartbeat interval the coordinator gives members of consumer groups (KIP-848).", func(c *Config) *int64 { return &c.GroupConsumerHeartbeatIntervalMs }),
	intProp("group.consumer.session.timeout.ms", 45000, 1, math.MaxInt32, "A consumer-group member (KIP-848) that does not heartbeat for this long is removed.", func(c *Config) *int64 { return &c.GroupConsumerSessionTimeoutMs }),
	intProp("group.consumer.max.size", math.MaxInt32, 1, math.MaxInt32, "Maximum members of one consumer group (KIP-848).", func(c *Config) *int64 { return &c.GroupConsumerMaxSize }),
	{key: "group.consumer.assignors", typ: typeList, def: "uniform,range", doc: "Server-side assignors of consumer groups (KIP-848), uniform and range; the first is the default.", set: func(c *Config, v string) error {
		var names []string
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return fmt.Errorf("must name at least one assignor")
		}
		c.GroupConsumerAssignors = names
		return nil
	}},
	intProp("transaction.state.log.replication.factor", 3, 1, math.MaxInt16, "Replication factor of __transaction_state (capped at the broker count).", func(c *Config) *int64 { return &c.TxnStateReplicationFactor }),
	intProp("transaction.state.log.min.isr", 2, 1, math.MaxInt32, "min.insync.replicas of __transaction_state.", func(c *Config) *int64 { return &c.TxnStateMinISR }),
	intProp("transaction.state.log.num.partitions", 50, 1, math.MaxInt32, "Partitions of __transaction_state.", func(c *Config) *int64 { return &c.TxnStateNumPartitions }),
	intProp("transaction.max.timeout.ms", 900000, 1, math.MaxInt32, "Largest transaction.timeout.ms a producer may ask for.", func(c *Config) *int64 { return &c.TxnMaxTimeoutMs }),
	boolProp("transaction.partition.verification.enable", true, "Reject a transactional produce to a partition not in the producer's ongoing transaction with INVALID_TXN_STATE (KIP-890).", func(c *Config) *bool { return &c.TxnPartitionVerification }),
	intProp("transactional.id.expiration.ms", 604800000, 1, math.MaxInt32, "Idle transactional ids are forgotten after this long.", func(c *Config) *int64 { return &c.TransactionalIDExpirationMs }),
	intProp("producer.id.expiration.ms", 86400000, -1, math.MaxInt32, "Idle idempotent producer state is forgotten after this long.", func(c *Config) *int64 { return &c.ProducerIDExpirationMs }),
	{key: "process.roles", typ: typeList, null: true, doc: "KRaft roles: broker,controller (combined) runs a node of a cluster under controller.quorum.voters; unset, or a combined node that is the only voter, is the single-node broker.", set: setProcessRoles},
	intProp("group.share.record.lock.duration.ms", 30000, 1000, 3600000, "How long a share group member holds the records it acquired before they are released for redelivery (a group's share.record.lock.duration.ms overrides it).", func(c *Config) *int64 { return &c.ShareRecordLockDurationMs }),
	intProp("group.share.min.record.lock.duration.ms", 15000, 1000, 3600000, "Smallest share.record.lock.duration.ms a group may set.", func(c *Config) *int64 { return &c.ShareMinRecordLockDurationMs }),
	intProp("group.share.max.record.lock.duration.ms", 60000, 1000, 3600000, "Largest share.record.lock.duration.ms a group may set.", func(c *Config) *int64 { return &c.ShareMaxRecordLockDurationMs }),
	intProp("group.share.min.heartbeat.interval.ms", 5000, 1000, math.MaxInt32, "Smallest share.heartbeat.interval.ms a group may set.", func(c *Config) *int64 { return &c.ShareMinHeartbeatIntervalMs }),
	intProp("group.share.max.heartbeat.interval.ms", 15000, 1000, math.MaxInt32, "Largest share.heartbeat.interval.ms a group may set.", func(c *Config) *int64 { return &c.ShareMaxHeartbeatIntervalMs }),
	intProp("group.share.min.session.timeout.ms", 45000, 1000, math.MaxInt32, "Smallest share.session.timeout.ms a group may set.", func(c *Config) *int64 { return &c.ShareMinSessionTimeoutMs }),
	intProp("group.share.max.session.timeout.ms", 60000, 1000, math.MaxInt32, "Largest share.session.timeout.ms a group may set.", func(c *Config) *int64 { return &c.ShareMaxSessionTimeoutMs }),
	intProp("group.share.delivery.count.limit", 5, 2, 10, "Deliveries of a record to share group members before it is archived (a group's share.delivery.count.limit overrides it).", func(c *Config) *int64 { return &c.ShareDeliveryCountLimit }),
	intProp("group.share.partition.max.record.locks", 2000, 100, 10000, "Records of one share-partition in flight (from the share-partition start offset) at once.", func(c *Config) *int64 { return &c.SharePartitionMaxRecordLocks }),
	intProp("group.share.heartbeat.interval.ms", 5000, 1000, math.MaxInt32, "Heartbeat interval given to share group members.", func(c *Config) *int64 { return &c.ShareHeartbeatIntervalMs }),
	intProp("group.share.session.timeout.ms", 45000, 1000, math.MaxInt32, "A share group member that does not heartbeat for this long is removed and its records released.", func(c *Config) *int64 { return &c.ShareSessionTimeoutMs }),
	intProp("group.share.max.size", 200, 1, 1000, "Maximum members of one share group.", func(c *Config) *int64 { return &c.ShareMaxSize }),
	intProp("group.share.max.share.sessions", 2000, 1, math.MaxInt32, "Share sessions kept at once; a new one beyond it fails with SHARE_SESSION_LIMIT_REACHED.", func(c *Config) *int64 { return &c.ShareMaxSessions }),
	intProp("share.coordinator.state.topic.num.partitions", 50, 1, math.MaxInt32, "Partitions of __share_group_state.", func(c *Config) *int64 { return &c.ShareStateNumPartitions }),
	intProp("share.coordinator.state.topic.replication.factor", 3, 1, math.MaxInt16, "Replication factor of __share_group_state (capped at the broker count).", func(c *Config) *int64 { return &c.ShareStateReplicationFactor }),
	{key: "cluster.id", typ: typeString, null: true, doc: "Cluster id reported in Metadata; generated and stored in meta.properties when unset.", set: func(c *Config, v string) error { c.ClusterID = v; return nil }},
	{key: "controller.quorum.voters", typ: typeList, def: "", doc: "The controllers: id@host:port of each one's CONTROLLER listener, where the metadata quorum's Raft traffic and the brokers' registrations go.", set: func(c *Config, v string) error {
		_, err := parseVoters(v)
		c.QuorumVoters = v
		return err
	}},
	{key: peerOverridesKey, typ: typeList, def: "", doc: "kafkit only, for fault-injection tests: id@host:port entries, each an address this node dials instead of node id's controller.quorum.voters address (a proxy in between), for the quorum's Raft traffic and every request to that node.", set: func(c *Config, v string) error {
		_, err := parseVoters(v)
		c.PeerAddressOverrides = v
		return err
	}},
	{key: "controller.quorum.bootstrap.servers", typ: typeList, def: "", doc: "A dynamic quorum (KIP-853): the controllers' CONTROLLER endpoints (host:port,...) instead of controller.quorum.voters, for controllers formatted with kafka-storage format --standalone, --initial-controllers or --no-initial-controllers and changed with kafka-metadata-quorum add-controller and remove-controller; broker-only nodes still need controller.quorum.voters. A combined node whose one server is itself is the single-node broker.", set: func(c *Config, v string) error { c.QuorumBootstrapServers = v; return nil }},
	{key: "broker.rack", typ: typeString, null: true, doc: "Rack of the broker, for rack-aware replica placement.", set: func(c *Config, v string) error { c.BrokerRack = strings.TrimSpace(v); return nil }},
	intProp("broker.heartbeat.interval.ms", 2000, 1, math.MaxInt32, "Time between a broker's heartbeats to the active controller.", func(c *Config) *int64 { return &c.BrokerHeartbeatIntervalMs }),
	intProp("broker.session.timeout.ms", 9000, 1, math.MaxInt32, "A broker without a heartbeat for this long is fenced and its leaderships move.", func(c *Config) *int64 { return &c.BrokerSessionTimeoutMs }),
	intProp("controller.quorum.election.timeout.ms", 1000, 1, math.MaxInt32, "Time without a leader's heartbeat before a controller starts an election.", func(c *Config) *int64 { return &c.QuorumElectionTimeoutMs }),
	boolProp("auto.leader.rebalance.enable", true, "The active controller moves each partition's leadership back to its preferred (first) replica, where that one is live and in the ISR, every leader.imbalance.check.interval.seconds.", func(c *Config) *bool { return &c.AutoLeaderRebalanceEnable }),
	intProp("leader.imbalance.check.interval.seconds", 300, 1, maxLong, "Time between the active controller's preferred leader elections (auto.leader.rebalance.enable).", func(c *Config) *int64 { return &c.LeaderImbalanceCheckIntervalSeconds }),
	ignoredProp("leader.imbalance.per.broker.percentage", "10", "Imbalance per broker that ZooKeeper mode's controller waited for before a rebalance; Kafka's KRaft controller rebalances every imbalanced partition and does not read it either"),
	{key: "authorizer.class.name", typ: typeString, def: "", doc: "The authorizer: empty for none (every request allowed, ACL APIs answer SECURITY_DISABLED), or " + standardAuthorizerClass + " (or " + aclAuthorizerClass + ", taken as the same) for ACLs with StandardAuthorizer's rules.", set: func(c *Config, v string) error {
		switch v = strings.TrimSpace(v); v {
		case "", standardAuthorizerClass, aclAuthorizerClass:
			c.AuthorizerClassName = v
			return nil
		}
		return fmt.Errorf("only %s and %s are supported, got %q", standardAuthorizerClass, aclAuthorizerClass, v)
	}},
	{key: "super.users", typ: typeString, null: true, doc: "Principals, separated by ';', that every ACL check allows (User:admin;User:broker).", set: func(c *Config, v string) error { c.SuperUsers = v; return nil }},
	boolProp("allow.everyone.if.no.acl.found", false, "Allow every principal on a resource that no ACL matches.", func(c *Config) *bool { return &c.AllowEveryoneIfNoACLFound }),
	intProp("quota.window.num", 11, 1, math.MaxInt32, "Samples kept in memory for client quotas.", func(c *Config) *int64 { return &c.QuotaWindowNum }),
	intProp("quota.window.size.seconds", 1, 1, math.MaxInt32, "Time span of each client quota sample.", func(c *Config) *int64 { return &c.QuotaWindowSizeSeconds }),
	ignoredProp("num.network.threads", "3", "Network threads"),
	ignoredProp("num.io.threads", "8", "I/O threads"),
	ignoredProp("socket.send.buffer.bytes", "102400", "SO_SNDBUF"),
	ignoredProp("socket.receive.buffer.bytes", "102400", "SO_RCVBUF"),
	ignoredProp("num.recovery.threads.per.data.dir", "2", "Recovery threads"),
	ignoredProp("share.coordinator.state.topic.replication.factor", "3", "Share groups"),
	ignoredProp("share.coordinator.state.topic.min.isr", "2", "Share groups"),
}, slices.Concat(securityProps, replicaProps)...)

func optionalInt(field func(*Config) **int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseInt(v, -1, maxLong)
		if err == nil {
			*field(c) = &n
		}
		return err
	}
}

var brokerPropByKey = func() map[string]*brokerProp {
	m := make(map[string]*brokerProp, len(brokerProps))
	for i := range brokerProps {
		m[brokerProps[i].key] = &brokerProps[i]
	}
	return m
}()

func validateCleanupPolicy(v string) error {
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case "delete", "compact":
		default:
			return fmt.Errorf("must be delete or compact, got %q", v)
		}
	}
	return nil
}

// parseRatio parses a ratio in [0, 1] (min.cleanable.dirty.ratio).
func parseRatio(v string) (float64, error) {
	r, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || !(r >= 0 && r <= 1) {
		return 0, fmt.Errorf("must be a number in [0, 1], got %q", v)
	}
	return r, nil
}

func validateCompression(v string) error {
	switch v {
	case "producer", "uncompressed", "none":
		return nil
	case "gzip", "snappy", "lz4", "zstd":
		return fmt.Errorf("recompression to %s is not implemented yet; use producer", v)
	}
	return fmt.Errorf("must be one of producer, uncompressed, gzip, snappy, lz4, zstd; got %q", v)
}

// ReadProperties parses a Java-style .properties file (key=value or key:value,
// # and ! comments, backslash line continuation) into a map.
func ReadProperties(r io.Reader) (map[string]string, error) {
	props := make(map[string]string)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var pending string
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimLeft(sc.Text(), " \t\f")
		if pending == "" && (line == "" || line[0] == '#' || line[0] == '!') {
			continue
		}
		if strings.HasSuffix(line, `\`) && !strings.HasSuffix(line, `\\`) {
			pending += line[:len(line)-1]
			continue
		}
		line = pending + line
		pending = ""
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			return nil, fmt.Errorf("line %d: want key=value, got %q", lineNo, line)
		}
		key := strings.TrimSpace(line[:i])
		props[key] = strings.TrimSpace(line[i+1:])
	}
	return props, sc.Err()
}
