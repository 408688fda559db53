// Package cli is the kafkit command line: topics, produce, consume, groups,
// configs and cluster commands in the manner of Kafka's kafka-topics.sh,
// kafka-console-producer.sh, kafka-console-consumer.sh,
// kafka-consumer-groups.sh and kafka-configs.sh. cmd/kafkit only wires
// Run to the process (arguments, standard streams, signals, exit code), so
// tests drive the whole CLI in-process.
package cli
