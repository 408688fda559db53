// Package integration holds kafkit's cross-component tests: third-party
// clients (sarama, franz-go) against the embedded broker, and the SDK against
// our broker, kfake, an external cluster (KAFKA_BOOTSTRAP) and, where a
// Docker engine answers, Apache Kafka in a container.
package integration
