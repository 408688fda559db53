package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handler serves one API key over a version range. Each handler file
// (00_produce.go, 01_fetch.go, ...) starts with the versions it supports and
// why; ApiVersions advertises these ranges (Produce's from v0: see
// produceAPIVersionsMin).
type handler struct {
	min, max int16
	fn       func(rc *reqCtx, req kmsg.Request) (kmsg.Response, error)
}

type handlerTable [kmsg.MaxKey + 1]*handler

func (t *handlerTable) lookup(key int16) *handler {
	if key < 0 || int(key) >= len(t) {
		return nil
	}
	return t[key]
}

// versions is a handler's supported range.
type versions struct{ min, max int16 }

// register adds a typed handler; the type assertion can't fail because the
// request object comes from kmsg.RequestForKey(key).
func register[Req kmsg.Request](t *handlerTable, key kmsg.Key, v versions, fn func(*reqCtx, Req) (kmsg.Response, error)) {
	if max := kmsg.RequestForKey(int16(key)).MaxVersion(); v.max > max {
		panic(fmt.Sprintf("broker: %s handler claims v%d but kmsg knows v%d", kmsg.NameForKey(int16(key)), v.max, max))
	}
	t[key] = &handler{min: v.min, max: v.max, fn: func(rc *reqCtx, req kmsg.Request) (kmsg.Response, error) {
		return fn(rc, req.(Req))
	}}
}

// newHandlers builds the dispatch table for b. Issue-by-issue, more APIs
// are added here; anything absent is closed as an unknown key, as Kafka does.
func (b *Broker) newHandlers() *handlerTable {
	t := new(handlerTable)
	register(t, kmsg.Produce, produceVersions, b.handleProduce)
	register(t, kmsg.Fetch, fetchVersions, b.handleFetch)
	register(t, kmsg.ListOffsets, listOffsetsVersions, b.handleListOffsets)
	register(t, kmsg.Metadata, metadataVersions, b.handleMetadata)
	register(t, kmsg.ApiVersions, apiVersionsVersions, b.handleAPIVersions)
	register(t, kmsg.CreateTopics, createTopicsVersions, b.handleCreateTopics)
	register(t, kmsg.DeleteTopics, deleteTopicsVersions, b.handleDeleteTopics)
	register(t, kmsg.InitProducerID, initProducerIDVersions, b.handleInitProducerID)
	register(t, kmsg.DescribeConfigs, describeConfigsVersions, b.handleDescribeConfigs)
	register(t, kmsg.CreatePartitions, createPartitionsVersions, b.handleCreatePartitions)
	register(t, kmsg.DescribeCluster, describeClusterVersions, b.handleDescribeCluster)
	register(t, kmsg.DeleteRecords, deleteRecordsVersions, b.handleDeleteRecords)
	register(t, kmsg.OffsetForLeaderEpoch, offsetForLeaderEpochVersions, b.handleOffsetForLeaderEpoch)
	register(t, kmsg.AlterConfigs, alterConfigsVersions, b.handleAlterConfigs)
	register(t, kmsg.DescribeLogDirs, describeLogDirsVersions, b.handleDescribeLogDirs)
	register(t, kmsg.IncrementalAlterConfigs, incrementalAlterConfigsVersions, b.handleIncrementalAlterConfigs)
	register(t, kmsg.DescribeACLs, describeACLsVersions, b.handleDescribeACLs)
	register(t, kmsg.CreateACLs, createACLsVersions, b.handleCreateACLs)
	register(t, kmsg.DeleteACLs, deleteACLsVersions, b.handleDeleteACLs)
	register(t, kmsg.ElectLeaders, electLeadersVersions, b.handleElectLeaders)
	register(t, kmsg.SASLHandshake, saslHandshakeVersions, b.handleSaslHandshake)
	register(t, kmsg.SASLAuthenticate, saslAuthenticateVersions, b.handleSaslAuthenticate)
	register(t, kmsg.DescribeUserSCRAMCredentials, describeUserSCRAMCredentialsVersions, b.handleDescribeUserSCRAMCredentials)
	register(t, kmsg.AlterUserSCRAMCredentials, alterUserSCRAMCredentialsVersions, b.handleAlterUserSCRAMCredentials)
	register(t, kmsg.AlterPartitionAssignments, alterPartitionReassignmentsVersions, b.handleAlterPartitionReassignments)
	register(t, kmsg.ListPartitionReassignments, listPartitionReassignmentsVersions, b.handleListPartitionReassignments)
	register(t, kmsg.DescribeTopicPartitions, describeTopicPartitionsVersions, b.handleDescribeTopicPartitions)
	register(t, kmsg.DescribeClientQuotas, describeClientQuotasVersions, b.handleDescribeClientQuotas)
	register(t, kmsg.AlterClientQuotas, alterClientQuotasVersions, b.handleAlterClientQuotas)
	register(t, kmsg.UpdateFeatures, updateFeaturesVersions, b.handleUpdateFeatures)
	b.registerCoordinatorHandlers(t)
	if b.cfg.clusterMode() {
		b.registerClusterHandlers(t)
	}
	b.registerShareHandlers(t)
	if b.cfg.controllerOnly() {
		keepControllerAPIs(t)
	}
	b.withAuthorization(t)
	b.withFeatureGates(t) // outside the authorization, as Kafka checks
	b.withQuotas(t)
	return t
}
