// Package admin is kafkit's admin client: topics, partitions, configs,
// consumer groups and their offsets, records and offsets of partitions, and
// the cluster's brokers. It is a thin layer over internal/client: each call
// builds Kafka requests (kmsg), sends them to the broker that must answer
// (the controller, a partition's leader, a group's coordinator, a named
// broker) and turns Kafka error codes into errors that wrap kerr's (so
// errors.Is(err, kerr.TopicAlreadyExists) works) and carry the broker's
// message.
//
// Every call blocks until the answer arrives or ctx ends; retriable failures
// (a coordinator still loading, a connection that dropped) are retried with
// retry.backoff.ms until ctx ends. Calls that touch several resources report
// every resource's failure at once (errors.Join) and still return what
// succeeded.
package admin
