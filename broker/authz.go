package broker

import (
	"math"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/auth"
)

// The authorizer.class.name values that turn on kafkit's authorizer, which
// has StandardAuthorizer's semantics; the ZooKeeper-era AclAuthorizer is
// taken as the same thing so that old server.properties keep working.
const (
	standardAuthorizerClass = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
	aclAuthorizerClass      = "kafka.security.authorizer.AclAuthorizer"
)

// aclsFile holds the ACLs, in <log.dirs>, rewritten atomically on every
// change (Kafka keeps them in its metadata log).
const aclsFile = "acls.json"

// acls is the broker's authorizer and its durable copy; nil authz means
// no authorizer.class.name: everything is allowed and the ACL APIs answer
// SECURITY_DISABLED.
type acls struct {
	authz *auth.Authorizer
	mu    sync.Mutex // serializes ACL changes with their write to aclsFile
}

func openACLs(b *Broker) (*acls, error) {
	if b.cfg.AuthorizerClassName == "" {
		return &acls{}, nil
	}
	a := &acls{authz: auth.NewAuthorizer(auth.AuthorizerConfig{
		SuperUsers: b.cfg.SuperUsers, AllowEveryoneIfNoACLFound: b.cfg.AllowEveryoneIfNoACLFound,
	})}
	var stored []auth.ACL
	if err := readJSON(b.fs, b.cfg.DataDir+"/"+aclsFile, &stored); err != nil {
		return nil, err
	}
	a.authz.SetACLs(stored)
	return a, nil
}

// change applies fn to the ACLs and stores the result; if it cannot be
// stored the ACLs are put back and the error returned.
func (b *Broker) changeACLs(fn func()) error {
	b.acls.mu.Lock()
	defer b.acls.mu.Unlock()
	before := b.acls.authz.ACLs()
	fn()
	if err := writeJSON(b.fs, b.cfg.DataDir+"/"+aclsFile, b.acls.authz.ACLs()); err != nil {
		b.acls.authz.SetACLs(before)
		b.log.Error("storing ACLs", "err", err)
		return err
	}
	return nil
}

// allowed is AuthHelper.authorize: may rc's principal, from its host, do
// op on the named resource.
func (b *Broker) allowed(rc *reqCtx, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	return b.acls.authz.Authorize(auth.ParsePrincipal(rc.principal), rc.host, op, rt, name)
}

func (b *Broker) allowedCluster(rc *reqCtx, op kmsg.ACLOperation) bool {
	return b.allowed(rc, op, kmsg.ACLResourceTypeCluster, auth.ClusterName)
}

// operations is AuthHelper.authorizedOperations, the bit field of the
// authorized-operations fields.
func (b *Broker) operations(rc *reqCtx, rt kmsg.ACLResourceType, name string) int32 {
	return b.acls.authz.AuthorizedOperations(auth.ParsePrincipal(rc.principal), rc.host, rt, name)
}

// notRequested is the authorized-operations value of a response whose
// request did not ask for it (the schema's default).
const notRequested = math.MinInt32

// withAuthorization puts Kafka's KafkaApis checks in front of every
// handler: requests are checked, in Kafka's order, before the handler sees
// them (authorization before existence); what is denied is taken out of
// the request and answered with the API's authorization error, merged into
// the handler's response. With no authorizer every check passes, and only
// the authorized-operations fields are filled in.
func (b *Broker) withAuthorization(t *handlerTable) {
	for _, h := range t {
		if h == nil {
			continue
		}
		next := h.fn
		h.fn = func(rc *reqCtx, req kmsg.Request) (kmsg.Response, error) {
			if rc.listener == controllerListener && b.cluster != nil {
				return b.authorizePeer(rc, req, next)
			}
			if b.cfg.testPrincipal != nil && rc.principal == anonymousPrincipal {
				rc.principal = b.cfg.testPrincipal(rc.clientID)
			}
			return b.authorize(rc, req, next)
		}
	}
}

type handlerFn = func(*reqCtx, kmsg.Request) (kmsg.Response, error)

// authorize dispatches to the per-API check; APIs that need no check
// (ApiVersions, SASL) and the ones checked in their own handler (ACLs,
// quotas) go straight through.
func (b *Broker) authorize(rc *reqCtx, req kmsg.Request, next handlerFn) (kmsg.Response, error) {
	switch r := req.(type) {
	case *kmsg.MetadataRequest:
		return b.authorizeMetadata(rc, r, next)
	case *kmsg.DescribeClusterRequest:
		return b.authorizeDescribeCluster(rc, r, next)
	case *kmsg.DescribeGroupsRequest:
		return b.authorizeDescribeGroups(rc, r, next)
	case *kmsg.DescribeTopicPartitionsRequest:
		return b.authorizeDescribeTopicPartitions(rc, r, next)
	case *kmsg.ConsumerGroupDescribeRequest:
		return b.authorizeConsumerGroupDescribe(rc, r, next)
	case *kmsg.ShareGroupDescribeRequest:
		return b.authorizeShareGroupDescribe(rc, r, next)
	}
	if b.acls.authz == nil {
		return next(rc, req)
	}
	switch r := req.(type) {
	case *kmsg.WriteTxnMarkersRequest, *kmsg.AlterPartitionRequest, *kmsg.BrokerRegistrationRequest,
		*kmsg.BrokerHeartbeatRequest, *kmsg.AllocateProducerIDsRequest:
		// Requests between nodes (markers arrive on the inter-broker
		// listener): CLUSTER_ACTION, as Kafka's.
		if b.allowedCluster(rc, kmsg.ACLOperationClusterAction) {
			return next(rc, req)
		}
		return errorResponse(r, kerr.ClusterAuthorizationFailed, ""), nil
	case *kmsg.ProduceRequest:
		return b.authorizeProduce(rc, r, next)
	case *kmsg.FetchRequest:
		return b.authorizeFetch(rc, r, next)
	case *kmsg.ListOffsetsRequest:
		return b.authorizeListOffsets(rc, r, next)
	case *kmsg.OffsetForLeaderEpochRequest:
		return b.authorizeOffsetForLeaderEpoch(rc, r, next)
	case *kmsg.CreateTopicsRequest:
		return b.authorizeCreateTopics(rc, r, next)
	case *kmsg.DeleteTopicsRequest:
		return b.authorizeDeleteTopics(rc, r, next)
	case *kmsg.CreatePartitionsRequest:
		return b.authorizeCreatePartitions(rc, r, next)
	case *kmsg.DeleteRecordsRequest:
		return b.authorizeDeleteRecords(rc, r, next)
	case *kmsg.DescribeConfigsRequest:
		return b.authorizeDescribeConfigs(rc, r, next)
	case *kmsg.AlterConfigsRequest:
		return b.authorizeAlterConfigs(rc, r, next)
	case *kmsg.IncrementalAlterConfigsRequest:
		return b.authorizeIncrementalAlterConfigs(rc, r, next)
	case *kmsg.InitProducerIDRequest:
		return b.authorizeInitProducerID(rc, r, next)
	case *kmsg.FindCoordinatorRequest:
		return b.authorizeFindCoordinator(rc, r, next)
	case *kmsg.ListGroupsRequest:
		return b.authorizeListGroups(rc, r, next)
	case *kmsg.DeleteGroupsRequest:
		return b.authorizeDeleteGroups(rc, r, next)
	case *kmsg.OffsetCommitRequest:
		return b.authorizeOffsetCommit(rc, r, next)
	case *kmsg.OffsetFetchRequest:
		return b.authorizeOffsetFetch(rc, r, next)
	case *kmsg.OffsetDeleteRequest:
		return b.authorizeOffsetDelete(rc, r, next)
	case *kmsg.AddPartitionsToTxnRequest:
		return b.authorizeAddPartitionsToTxn(rc, r, next)
	case *kmsg.TxnOffsetCommitRequest:
		return b.authorizeTxnOffsetCommit(rc, r, next)
	case *kmsg.DescribeProducersRequest:
		return b.authorizeDescribeProducers(rc, r, next)
	case *kmsg.DescribeTransactionsRequest:
		return b.authorizeDescribeTransactions(rc, r, next)
	case *kmsg.ConsumerGroupHeartbeatRequest:
		return b.authorizeGroupHeartbeat(rc, r, r.Group, r.SubscribedTopicNames, next)
	case *kmsg.ShareGroupHeartbeatRequest:
		return b.authorizeGroupHeartbeat(rc, r, r.GroupID, r.SubscribedTopicNames, next)
	case *kmsg.ShareFetchRequest:
		return b.authorizeShareFetch(rc, r, next)
	case *kmsg.ShareAcknowledgeRequest:
		return b.authorizeShareAcknowledge(rc, r, next)
	case *kmsg.DescribeShareGroupOffsetsRequest:
		return b.authorizeDescribeShareGroupOffsets(rc, r, next)
	case *kmsg.AlterShareGroupOffsetsRequest:
		return b.authorizeAlterShareGroupOffsets(rc, r, next)
	case *kmsg.DeleteShareGroupOffsetsRequest:
		return b.authorizeDeleteShareGroupOffsets(rc, r, next)
	case *kmsg.ListTransactionsRequest:
		resp, err := next(rc, r)
		if lr, ok := resp.(*kmsg.ListTransactionsResponse); ok {
			lr.TransactionStates = slices.DeleteFunc(lr.TransactionStates, func(s kmsg.ListTransactionsResponseTransactionState) bool {
				return !b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, s.TransactionalID)
			})
		}
		return resp, err
	}
	if code, denied := b.requestDenied(rc, req); denied {
		return wholeRequestError(req, code), nil
	}
	return next(rc, req)
}

// requestDenied is the check of the APIs that Kafka fails as a whole: the
// group APIs (READ on the group), the transaction APIs (WRITE on the
// transactional id, then READ on the group) and the cluster operations.
func (b *Broker) requestDenied(rc *reqCtx, req kmsg.Request) (*kerr.Error, bool) {
	group := func(op kmsg.ACLOperation, g string) (*kerr.Error, bool) {
		return kerr.GroupAuthorizationFailed, !b.allowed(rc, op, kmsg.ACLResourceTypeGroup, g)
	}
	txn := func(id string) bool {
		return !b.allowed(rc, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, id)
	}
	cluster := func(op kmsg.ACLOperation) (*kerr.Error, bool) {
		return kerr.ClusterAuthorizationFailed, !b.allowedCluster(rc, op)
	}
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		return group(kmsg.ACLOperationRead, r.Group)
	case *kmsg.SyncGroupRequest:
		return group(kmsg.ACLOperationRead, r.Group)
	case *kmsg.HeartbeatRequest:
		return group(kmsg.ACLOperationRead, r.Group)
	case *kmsg.LeaveGroupRequest:
		return group(kmsg.ACLOperationRead, r.Group)
	case *kmsg.EndTxnRequest:
		return kerr.TransactionalIDAuthorizationFailed, txn(r.TransactionalID)
	case *kmsg.AddOffsetsToTxnRequest:
		if txn(r.TransactionalID) {
			return kerr.TransactionalIDAuthorizationFailed, true
		}
		return group(kmsg.ACLOperationRead, r.Group)
	case *kmsg.DescribeLogDirsRequest, *kmsg.ListPartitionReassignmentsRequest:
		return cluster(kmsg.ACLOperationDescribe)
	case *kmsg.ElectLeadersRequest, *kmsg.AlterPartitionAssignmentsRequest, *kmsg.UnregisterBrokerRequest,
		*kmsg.AddRaftVoterRequest, *kmsg.RemoveRaftVoterRequest, *kmsg.UpdateFeaturesRequest:
		return cluster(kmsg.ACLOperationAlter)
	case *kmsg.DescribeQuorumRequest:
		return cluster(kmsg.ACLOperationDescribe)
	}
	return nil, false
}

// wholeRequestError is the request's getErrorResponse for the APIs of
// requestDenied.
func wholeRequestError(req kmsg.Request, e *kerr.Error) kmsg.Response {
	resp := req.ResponseKind()
	switch r := resp.(type) {
	case *kmsg.JoinGroupResponse:
		r.ErrorCode, r.Generation = e.Code, -1
	case *kmsg.SyncGroupResponse:
		r.ErrorCode = e.Code
	case *kmsg.HeartbeatResponse:
		r.ErrorCode = e.Code
	case *kmsg.LeaveGroupResponse:
		r.ErrorCode = e.Code
	case *kmsg.EndTxnResponse:
		r.ErrorCode = e.Code
	case *kmsg.AddOffsetsToTxnResponse:
		r.ErrorCode = e.Code
	case *kmsg.DescribeLogDirsResponse:
		r.ErrorCode = e.Code
	case *kmsg.ListPartitionReassignmentsResponse:
		r.ErrorCode, r.ErrorMessage = e.Code, kmsg.StringPtr(e.Description)
	case *kmsg.AlterPartitionAssignmentsResponse:
		r.ErrorCode, r.ErrorMessage = e.Code, kmsg.StringPtr(e.Description)
	case *kmsg.DescribeQuorumResponse:
		r.ErrorCode, r.ErrorMessage = e.Code, kmsg.StringPtr(e.Description)
	case *kmsg.UnregisterBrokerResponse:
		r.ErrorCode, r.ErrorMessage = e.Code, kmsg.StringPtr(e.Description)
	case *kmsg.UpdateFeaturesResponse:
		r.ErrorCode, r.ErrorMessage = e.Code, kmsg.StringPtr(e.Description)
	case *kmsg.AddRaftVoterResponse:
		r.ErrorCode, r.ErrorMessage = e.Code, kmsg.StringPtr(e.Description)
	case *kmsg.RemoveRaftVoterResponse:
		r.ErrorCode, r.ErrorMessage = e.Code, kmsg.StringPtr(e.Description)
	case *kmsg.ElectLeadersResponse:
		r.ErrorCode = e.Code
		for _, rt := range req.(*kmsg.ElectLeadersRequest).Topics {
			st := kmsg.NewElectLeadersResponseTopic()
			st.Topic = rt.Topic
			for _, p := range rt.Partitions {
				sp := kmsg.NewElectLeadersResponseTopicPartition()
				sp.Partition, sp.ErrorCode = p, e.Code
				st.Partitions = append(st.Partitions, sp)
			}
			r.Topics = append(r.Topics, st)
		}
	}
	return resp
}

// partitionSplit keeps in *items those whose topic allows op and returns
// the others (AuthHelper.partitionSeqByAuthorized).
func partitionSplit[T any](b *Broker, rc *reqCtx, op kmsg.ACLOperation, items *[]T, topic func(*T) string) []T {
	var denied []T
	kept := (*items)[:0:0]
	for i := range *items {
		// An empty name is an unknown topic id: the handler answers
		// UNKNOWN_TOPIC_ID, which discloses nothing.
		if name := topic(&(*items)[i]); name == "" || b.allowed(rc, op, kmsg.ACLResourceTypeTopic, name) {
			kept = append(kept, (*items)[i])
		} else {
			denied = append(denied, (*items)[i])
		}
	}
	*items = kept
	return denied
}

// topicsThen takes the denied topics out of *items (partitionSplit), runs
// next on the others and has merge add the answer for the denied ones
// (topicsDenied's) to the handler's response.
func topicsThen[T any, R kmsg.Response](b *Broker, rc *reqCtx, op kmsg.ACLOperation, req kmsg.Request, next handlerFn,
	items *[]T, topic func(*T) string, merge func(R, []T),
) (kmsg.Response, error) {
	denied := partitionSplit(b, rc, op, items, topic)
	resp, err := next(rc, req)
	if err != nil || len(denied) == 0 {
		return resp, err
	}
	merge(resp.(R), denied)
	return resp, nil
}

// topicNameOr returns the name of the topic with id, or name when the
// request names topics (id zero) or the id is unknown (the handler answers
// UNKNOWN_TOPIC_ID; an unknown id discloses nothing).
func (b *Broker) topicNameOr(name string, id [16]byte) string {
	if id != ([16]byte{}) {
		if t := b.topics.getByID(id); t != nil {
			return t.name
		}
	}
	return name
}

func (b *Broker) authorizeProduce(rc *reqCtx, r *kmsg.ProduceRequest, next handlerFn) (kmsg.Response, error) {
	if r.TransactionID != nil && !b.allowed(rc, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, *r.TransactionID) {
		if r.Acks == 0 {
			return nil, nil // as getErrorResponse: nothing to a producer that wants no answer
		}
		return errorResponse(r, kerr.TransactionalIDAuthorizationFailed, ""), nil
	}
	denied := partitionSplit(b, rc, kmsg.ACLOperationWrite, &r.Topics, func(t *kmsg.ProduceRequestTopic) string { return b.topicNameOr(t.Topic, t.TopicID) })
	resp, err := next(rc, r)
	if err != nil || r.Acks == 0 || len(denied) == 0 {
		return resp, err
	}
	pr := resp.(*kmsg.ProduceResponse)
	pr.Topics = append(pr.Topics, topicsDenied[*kmsg.ProduceResponse](&kmsg.ProduceRequest{Version: r.Version, Topics: denied}, nil).Topics...)
	return pr, nil
}

func (b *Broker) authorizeFetch(rc *reqCtx, r *kmsg.FetchRequest, next handlerFn) (kmsg.Response, error) {
	var denied []kmsg.FetchRequestTopic
	if r.ReplicaID >= 0 || r.ReplicaState.ID >= 0 {
		// A follower's fetch needs CLUSTER_ACTION; without it every
		// partition fails.
		if !b.allowedCluster(rc, kmsg.ACLOperationClusterAction) {
			denied, r.Topics = r.Topics, nil
		}
	} else {
		denied = partitionSplit(b, rc, kmsg.ACLOperationRead, &r.Topics, func(t *kmsg.FetchRequestTopic) string { return b.topicNameOr(t.Topic, t.TopicID) })
	}
	if len(denied) > 0 && len(r.Topics) == 0 && r.SessionEpoch <= 0 {
		// Nothing left to wait for: Kafka answers at once.
		r.MaxWaitMillis = 0
	}
	resp, err := next(rc, r)
	if err != nil || len(denied) == 0 {
		return resp, err
	}
	fr := resp.(*kmsg.FetchResponse)
	fr.Topics = append(fr.Topics, topicsDenied[*kmsg.FetchResponse](&kmsg.FetchRequest{Version: r.Version, Topics: denied}, nil).Topics...)
	return fr, nil
}

func (b *Broker) authorizeListOffsets(rc *reqCtx, r *kmsg.ListOffsetsRequest, next handlerFn) (kmsg.Response, error) {
	return topicsThen(b, rc, kmsg.ACLOperationDescribe, r, next, &r.Topics, func(t *kmsg.ListOffsetsRequestTopic) string { return t.Topic },
		func(resp *kmsg.ListOffsetsResponse, denied []kmsg.ListOffsetsRequestTopic) {
			resp.Topics = append(resp.Topics, topicsDenied[*kmsg.ListOffsetsResponse](&kmsg.ListOffsetsRequest{Version: r.Version, Topics: denied}, nil).Topics...)
		})
}

func (b *Broker) authorizeOffsetForLeaderEpoch(rc *reqCtx, r *kmsg.OffsetForLeaderEpochRequest, next handlerFn) (kmsg.Response, error) {
	if b.allowedCluster(rc, kmsg.ACLOperationClusterAction) {
		return next(rc, r) // a follower's right: every topic
	}
	return topicsThen(b, rc, kmsg.ACLOperationDescribe, r, next, &r.Topics, func(t *kmsg.OffsetForLeaderEpochRequestTopic) string { return t.Topic },
		func(resp *kmsg.OffsetForLeaderEpochResponse, denied []kmsg.OffsetForLeaderEpochRequestTopic) {
			resp.Topics = append(resp.Topics, topicsDenied[*kmsg.OffsetForLeaderEpochResponse](&kmsg.OffsetForLeaderEpochRequest{Version: r.Version, Topics: denied}, nil).Topics...)
		})
}

// authorizeMetadata is handleTopicMetadataRequest's part: DESCRIBE on each
// topic (an all-topics request silently leaves out what may not be
// described; a named one gets TOPIC_AUTHORIZATION_FAILED without saying
// whether the topic exists), CREATE on the cluster or the topic for an
// auto-creation, then the authorized-operations fields.
func (b *Broker) authorizeMetadata(rc *reqCtx, r *kmsg.MetadataRequest, next handlerFn) (kmsg.Response, error) {
	allTopics := r.Topics == nil || rc.version == 0 && len(r.Topics) == 0
	var denied []kmsg.MetadataRequestTopic
	if !allTopics && b.acls.authz != nil {
		autoCreate := b.cfg.AutoCreateTopics && (rc.version < 4 || r.AllowAutoTopicCreation)
		kept := r.Topics[:0:0]
		for _, rt := range r.Topics {
			name := b.topicNameOr("", rt.TopicID)
			if rt.Topic != nil {
				name = *rt.Topic
			}
			switch {
			case name == "":
				kept = append(kept, rt) // an unknown id: UNKNOWN_TOPIC_ID discloses nothing
			case !b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, name):
				// Topic ids are not secret, names are: the answer
				// names it as the request did.
				denied = append(denied, rt)
			case autoCreate && b.topics.get(name) == nil && !b.allowedCluster(rc, kmsg.ACLOperationCreate) &&
				!b.allowed(rc, kmsg.ACLOperationCreate, kmsg.ACLResourceTypeTopic, name):
				denied = append(denied, rt)
			default:
				kept = append(kept, rt)
			}
		}
		r.Topics = kept
	}
	resp, err := next(rc, r)
	if err != nil {
		return resp, err
	}
	mr := resp.(*kmsg.MetadataResponse)
	if rc.version == 0 && !allTopics && len(r.Topics) == 0 {
		mr.Topics = nil // v0 took the emptied list as "all topics"
	}
	if allTopics && b.acls.authz != nil {
		mr.Topics = slices.DeleteFunc(mr.Topics, func(t kmsg.MetadataResponseTopic) bool {
			return t.Topic != nil && !b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, *t.Topic)
		})
	}
	if r.IncludeTopicAuthorizedOperations {
		for i := range mr.Topics {
			if t := &mr.Topics[i]; t.Topic != nil {
				t.AuthorizedOperations = b.operations(rc, kmsg.ACLResourceTypeTopic, *t.Topic)
			}
		}
	}
	if len(denied) > 0 {
		mr.Topics = append(mr.Topics, topicsDenied[*kmsg.MetadataResponse](&kmsg.MetadataRequest{Version: r.Version, Topics: denied}, nil).Topics...)
	}
	if r.IncludeClusterAuthorizedOperations {
		mr.AuthorizedOperations = b.clusterOperations(rc)
	}
	return mr, nil
}

// clusterOperations is the cluster's authorized-operations field: zero
// without DESCRIBE on the cluster.
func (b *Broker) clusterOperations(rc *reqCtx) int32 {
	if !b.allowedCluster(rc, kmsg.ACLOperationDescribe) {
		return 0
	}
	return b.operations(rc, kmsg.ACLResourceTypeCluster, auth.ClusterName)
}

func (b *Broker) authorizeDescribeCluster(rc *reqCtx, r *kmsg.DescribeClusterRequest, next handlerFn) (kmsg.Response, error) {
	resp, err := next(rc, r)
	if dr, ok := resp.(*kmsg.DescribeClusterResponse); ok && r.IncludeClusterAuthorizedOperations && dr.ErrorCode == 0 {
		dr.ClusterAuthorizedOperations = b.clusterOperations(rc)
	}
	return resp, err
}

func (b *Broker) authorizeDescribeTopicPartitions(rc *reqCtx, r *kmsg.DescribeTopicPartitionsRequest, next handlerFn) (kmsg.Response, error) {
	allTopics := len(r.Topics) == 0
	var denied []kmsg.DescribeTopicPartitionsRequestTopic
	if !allTopics {
		denied = partitionSplit(b, rc, kmsg.ACLOperationDescribe, &r.Topics, func(t *kmsg.DescribeTopicPartitionsRequestTopic) string { return t.Topic })
		if len(r.Topics) == 0 {
			// All named topics were denied: answer only those, the handler
			// would list every topic for an empty list.
			return topicsDenied[*kmsg.DescribeTopicPartitionsResponse](&kmsg.DescribeTopicPartitionsRequest{Version: r.Version, Topics: denied}, nil), nil
		}
	}
	resp, err := next(rc, r)
	if err != nil {
		return resp, err
	}
	dr := resp.(*kmsg.DescribeTopicPartitionsResponse)
	if allTopics {
		dr.Topics = slices.DeleteFunc(dr.Topics, func(t kmsg.DescribeTopicPartitionsResponseTopic) bool {
			return t.Topic != nil && !b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, *t.Topic)
		})
	}
	for i := range dr.Topics {
		if t := &dr.Topics[i]; t.Topic != nil {
			t.AuthorizedOperations = b.operations(rc, kmsg.ACLResourceTypeTopic, *t.Topic)
		}
	}
	if len(denied) > 0 {
		dr.Topics = append(dr.Topics, topicsDenied[*kmsg.DescribeTopicPartitionsResponse](&kmsg.DescribeTopicPartitionsRequest{Version: r.Version, Topics: denied}, nil).Topics...)
	}
	return dr, nil
}

// authorizeCreateTopics: CREATE on the cluster, else on each topic; a
// topic that may be created but not have its configs described gets
// TOPIC_AUTHORIZATION_FAILED as its config error and no configs.
func (b *Broker) authorizeCreateTopics(rc *reqCtx, r *kmsg.CreateTopicsRequest, next handlerFn) (kmsg.Response, error) {
	var denied []kmsg.CreateTopicsRequestTopic
	if !b.allowedCluster(rc, kmsg.ACLOperationCreate) {
		denied = partitionSplit(b, rc, kmsg.ACLOperationCreate, &r.Topics, func(t *kmsg.CreateTopicsRequestTopic) string { return t.Topic })
	}
	resp, err := next(rc, r)
	if err != nil {
		return resp, err
	}
	cr := resp.(*kmsg.CreateTopicsResponse)
	for i := range cr.Topics {
		t := &cr.Topics[i]
		if t.ErrorCode == 0 && !b.allowed(rc, kmsg.ACLOperationDescribeConfigs, kmsg.ACLResourceTypeTopic, t.Topic) {
			t.ConfigErrorCode, t.Configs = kerr.TopicAuthorizationFailed.Code, nil
			t.NumPartitions, t.ReplicationFactor = -1, -1
		}
	}
	if len(denied) > 0 {
		// The controller's answer (ControllerApis.createTopics), message and all.
		d := topicsDenied[*kmsg.CreateTopicsResponse](&kmsg.CreateTopicsRequest{Version: r.Version, Topics: denied}, kmsg.StringPtr("Authorization failed."))
		cr.Topics = append(cr.Topics, d.Topics...)
	}
	return cr, nil
}

// authorizeDeleteTopics: a topic named by id needs DESCRIBE (or its name
// is withheld), every topic DELETE; both before existence.
func (b *Broker) authorizeDeleteTopics(rc *reqCtx, r *kmsg.DeleteTopicsRequest, next handlerFn) (kmsg.Response, error) {
	var denied []kmsg.DeleteTopicsResponseTopic
	deny := func(name *string, id [16]byte) {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID, st.ErrorCode = name, id, kerr.TopicAuthorizationFailed.Code
		st.ErrorMessage = topicDeniedMsg // ControllerApis' ApiError(TOPIC_AUTHORIZATION_FAILED)
		denied = append(denied, st)
	}
	r.TopicNames = slices.DeleteFunc(r.TopicNames, func(name string) bool {
		if b.allowed(rc, kmsg.ACLOperationDelete, kmsg.ACLResourceTypeTopic, name) {
			return false
		}
		deny(kmsg.StringPtr(name), [16]byte{})
		return true
	})
	r.Topics = slices.DeleteFunc(r.Topics, func(rt kmsg.DeleteTopicsRequestTopic) bool {
		name := b.topicNameOr("", rt.TopicID)
		if rt.Topic != nil {
			name = *rt.Topic
		}
		switch {
		case name == "":
			return false
		case rt.Topic == nil && !b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, name):
			deny(nil, rt.TopicID)
		case !b.allowed(rc, kmsg.ACLOperationDelete, kmsg.ACLResourceTypeTopic, name):
			deny(&name, rt.TopicID)
		default:
			return false
		}
		return true
	})
	resp, err := next(rc, r)
	if err != nil {
		return resp, err
	}
	dr := resp.(*kmsg.DeleteTopicsResponse)
	dr.Topics = append(dr.Topics, denied...)
	return dr, nil
}

func (b *Broker) authorizeCreatePartitions(rc *reqCtx, r *kmsg.CreatePartitionsRequest, next handlerFn) (kmsg.Response, error) {
	return topicsThen(b, rc, kmsg.ACLOperationAlter, r, next, &r.Topics, func(t *kmsg.CreatePartitionsRequestTopic) string { return t.Topic },
		func(resp *kmsg.CreatePartitionsResponse, denied []kmsg.CreatePartitionsRequestTopic) {
			// Without a message, as the controller answers (ControllerApis.createPartitions).
			resp.Topics = append(resp.Topics, topicsDenied[*kmsg.CreatePartitionsResponse](&kmsg.CreatePartitionsRequest{Version: r.Version, Topics: denied}, nil).Topics...)
		})
}

func (b *Broker) authorizeDeleteRecords(rc *reqCtx, r *kmsg.DeleteRecordsRequest, next handlerFn) (kmsg.Response, error) {
	return topicsThen(b, rc, kmsg.ACLOperationDelete, r, next, &r.Topics, func(t *kmsg.DeleteRecordsRequestTopic) string { return t.Topic },
		func(resp *kmsg.DeleteRecordsResponse, denied []kmsg.DeleteRecordsRequestTopic) {
			resp.Topics = append(resp.Topics, topicsDenied[*kmsg.DeleteRecordsResponse](&kmsg.DeleteRecordsRequest{Version: r.Version, Topics: denied}, nil).Topics...)
		})
}

// configResourceAllowed is the check of the config APIs per resource:
// brokers and broker loggers on the cluster, topics and groups on
// themselves; it returns the error of a denied resource.
func (b *Broker) configResourceAllowed(rc *reqCtx, op kmsg.ACLOperation, typ kmsg.ConfigResourceType, name string) *kerr.Error {
	switch typ {
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger, kmsg.ConfigResourceTypeClientMetrics:
		if !b.allowedCluster(rc, op) {
			return kerr.ClusterAuthorizationFailed
		}
	case kmsg.ConfigResourceTypeTopic:
		if !b.allowed(rc, op, kmsg.ACLResourceTypeTopic, name) {
			return kerr.TopicAuthorizationFailed
		}
	case kmsg.ConfigResourceTypeGroupConfig:
		if !b.allowed(rc, op, kmsg.ACLResourceTypeGroup, name) {
			return kerr.GroupAuthorizationFailed
		}
	}
	return nil
}

// filterThen takes out of *items those deny answers for, runs next on what
// is left and hands the handler's response and the denied answers to merge.
func filterThen[I, O any, R kmsg.Response](rc *reqCtx, req kmsg.Request, next handlerFn, items *[]I, deny func(*I) (O, bool), merge func(R, []O)) (kmsg.Response, error) {
	var denied []O
	kept := (*items)[:0:0]
	for i := range *items {
		if o, d := deny(&(*items)[i]); d {
			denied = append(denied, o)
		} else {
			kept = append(kept, (*items)[i])
		}
	}
	*items = kept
	resp, err := next(rc, req)
	if err != nil || len(denied) == 0 {
		return resp, err
	}
	merge(resp.(R), denied)
	return resp, nil
}

func (b *Broker) authorizeDescribeConfigs(rc *reqCtx, r *kmsg.DescribeConfigsRequest, next handlerFn) (kmsg.Response, error) {
	return filterThen(rc, r, next, &r.Resources, func(rr *kmsg.DescribeConfigsRequestResource) (kmsg.DescribeConfigsResponseResource, bool) {
		d := kmsg.NewDescribeConfigsResponseResource()
		e := b.configResourceAllowed(rc, kmsg.ACLOperationDescribeConfigs, rr.ResourceType, rr.ResourceName)
		if e != nil {
			d.ResourceType, d.ResourceName, d.ErrorCode, d.ErrorMessage = rr.ResourceType, rr.ResourceName, e.Code, kmsg.StringPtr(e.Description)
		}
		return d, e != nil
	}, func(resp *kmsg.DescribeConfigsResponse, denied []kmsg.DescribeConfigsResponseResource) {
		resp.Resources = append(resp.Resources, denied...)
	})
}

func (b *Broker) authorizeAlterConfigs(rc *reqCtx, r *kmsg.AlterConfigsRequest, next handlerFn) (kmsg.Response, error) {
	return filterThen(rc, r, next, &r.Resources, func(rr *kmsg.AlterConfigsRequestResource) (kmsg.AlterConfigsResponseResource, bool) {
		d := kmsg.NewAlterConfigsResponseResource()
		e := b.configResourceAllowed(rc, kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName)
		if e != nil {
			d.ResourceType, d.ResourceName, d.ErrorCode, d.ErrorMessage = rr.ResourceType, rr.ResourceName, e.Code, kmsg.StringPtr(e.Description)
		}
		return d, e != nil
	}, func(resp *kmsg.AlterConfigsResponse, denied []kmsg.AlterConfigsResponseResource) {
		resp.Resources = append(resp.Resources, denied...)
	})
}

func (b *Broker) authorizeIncrementalAlterConfigs(rc *reqCtx, r *kmsg.IncrementalAlterConfigsRequest, next handlerFn) (kmsg.Response, error) {
	return filterThen(rc, r, next, &r.Resources, func(rr *kmsg.IncrementalAlterConfigsRequestResource) (kmsg.IncrementalAlterConfigsResponseResource, bool) {
		d := kmsg.NewIncrementalAlterConfigsResponseResource()
		e := b.configResourceAllowed(rc, kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName)
		if e != nil {
			d.ResourceType, d.ResourceName, d.ErrorCode, d.ErrorMessage = rr.ResourceType, rr.ResourceName, e.Code, kmsg.StringPtr(e.Description)
		}
		return d, e != nil
	}, func(resp *kmsg.IncrementalAlterConfigsResponse, denied []kmsg.IncrementalAlterConfigsResponseResource) {
		resp.Resources = append(resp.Resources, denied...)
	})
}

// authorizeInitProducerID: WRITE on the transactional id; an idempotent
// producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic
// (Kafka 3+, KIP-679).
func (b *Broker) authorizeInitProducerID(rc *reqCtx, r *kmsg.InitProducerIDRequest, next handlerFn) (kmsg.Response, error) {
	var e *kerr.Error
	switch {
	case r.TransactionalID != nil:
		if !b.allowed(rc, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, *r.TransactionalID) {
			e = kerr.TransactionalIDAuthorizationFailed
		}
	case !b.allowedCluster(rc, kmsg.ACLOperationIdempotentWrite) &&
		!b.acls.authz.AuthorizeByResourceType(auth.ParsePrincipal(rc.principal), rc.host, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic):
		e = kerr.ClusterAuthorizationFailed
	}
	if e == nil {
		return next(rc, r)
	}
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = e.Code, -1, -1
	return resp, nil
}

// authorizeFindCoordinator: DESCRIBE on the group or transactional id of
// each key.
func (b *Broker) authorizeFindCoordinator(rc *reqCtx, r *kmsg.FindCoordinatorRequest, next handlerFn) (kmsg.Response, error) {
	deniedKey := func(key string) *kerr.Error {
		switch r.CoordinatorType {
		case 0:
			if !b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, key) {
				return kerr.GroupAuthorizationFailed
			}
		case 1:
			if !b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, key) {
				return kerr.TransactionalIDAuthorizationFailed
			}
		case 2: // share coordinator keys are for brokers, as in Kafka
			if !b.allowedCluster(rc, kmsg.ACLOperationClusterAction) {
				return kerr.ClusterAuthorizationFailed
			}
		}
		return nil
	}
	if rc.version < 4 {
		if e := deniedKey(r.CoordinatorKey); e != nil {
			resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
			resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Port = e.Code, kmsg.StringPtr(e.Description), -1, -1
			return resp, nil
		}
		return next(rc, r)
	}
	var denied []kmsg.FindCoordinatorResponseCoordinator
	r.CoordinatorKeys = slices.DeleteFunc(r.CoordinatorKeys, func(key string) bool {
		e := deniedKey(key)
		if e != nil {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key, c.ErrorCode, c.ErrorMessage, c.NodeID, c.Port = key, e.Code, kmsg.StringPtr(e.Description), -1, -1
			denied = append(denied, c)
		}
		return e != nil
	})
	resp, err := next(rc, r)
	if err != nil {
		return resp, err
	}
	fr := resp.(*kmsg.FindCoordinatorResponse)
	fr.Coordinators = append(fr.Coordinators, denied...)
	return fr, nil
}

func (b *Broker) authorizeDescribeGroups(rc *reqCtx, r *kmsg.DescribeGroupsRequest, next handlerFn) (kmsg.Response, error) {
	var denied []kmsg.DescribeGroupsResponseGroup
	if b.acls.authz != nil {
		r.Groups = slices.DeleteFunc(r.Groups, func(g string) bool {
			if b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, g) {
				return false
			}
			d := kmsg.NewDescribeGroupsResponseGroup()
			d.Group, d.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
			denied = append(denied, d)
			return true
		})
	}
	resp, err := next(rc, r)
	if err != nil {
		return resp, err
	}
	dr := resp.(*kmsg.DescribeGroupsResponse)
	if r.IncludeAuthorizedOperations {
		for i := range dr.Groups {
			if g := &dr.Groups[i]; g.ErrorCode == 0 {
				g.AuthorizedOperations = b.operations(rc, kmsg.ACLResourceTypeGroup, g.Group)
			}
		}
	}
	dr.Groups = append(dr.Groups, denied...)
	return dr, nil
}

// authorizeListGroups: every group with DESCRIBE on the cluster, else only
// the groups that may be described.
func (b *Broker) authorizeListGroups(rc *reqCtx, r *kmsg.ListGroupsRequest, next handlerFn) (kmsg.Response, error) {
	resp, err := next(rc, r)
	if lr, ok := resp.(*kmsg.ListGroupsResponse); ok && !b.allowedCluster(rc, kmsg.ACLOperationDescribe) {
		lr.Groups = slices.DeleteFunc(lr.Groups, func(g kmsg.ListGroupsResponseGroup) bool {
			return !b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, g.Group)
		})
	}
	return resp, err
}

func (b *Broker) authorizeDeleteGroups(rc *reqCtx, r *kmsg.DeleteGroupsRequest, next handlerFn) (kmsg.Response, error) {
	return filterThen(rc, r, next, &r.Groups, func(g *string) (kmsg.DeleteGroupsResponseGroup, bool) {
		d := kmsg.NewDeleteGroupsResponseGroup()
		d.Group, d.ErrorCode = *g, kerr.GroupAuthorizationFailed.Code
		return d, !b.allowed(rc, kmsg.ACLOperationDelete, kmsg.ACLResourceTypeGroup, *g)
	}, func(resp *kmsg.DeleteGroupsResponse, denied []kmsg.DeleteGroupsResponseGroup) {
		resp.Groups = append(resp.Groups, denied...)
	})
}

// authorizeOffsetCommit: READ on the group (else every partition fails),
// then READ on each topic.
func (b *Broker) authorizeOffsetCommit(rc *reqCtx, r *kmsg.OffsetCommitRequest, next handlerFn) (kmsg.Response, error) {
	if !b.allowed(rc, kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, r.Group) {
		return errorResponse(r, kerr.GroupAuthorizationFailed, ""), nil
	}
	return topicsThen(b, rc, kmsg.ACLOperationRead, r, next, &r.Topics, func(t *kmsg.OffsetCommitRequestTopic) string { return t.Topic },
		func(resp *kmsg.OffsetCommitResponse, denied []kmsg.OffsetCommitRequestTopic) {
			resp.Topics = append(resp.Topics, topicsDenied[*kmsg.OffsetCommitResponse](&kmsg.OffsetCommitRequest{Version: r.Version, Topics: denied}, nil).Topics...)
		})
}

// authorizeOffsetFetch: DESCRIBE on each group (GROUP_AUTHORIZATION_FAILED),
// then DESCRIBE on the topics: named ones that may not be described get
// TOPIC_AUTHORIZATION_FAILED, a request for all offsets leaves them out.
func (b *Broker) authorizeOffsetFetch(rc *reqCtx, r *kmsg.OffsetFetchRequest, next handlerFn) (kmsg.Response, error) {
	describeTopic := func(name string) bool {
		return b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, name)
	}
	if rc.version < 8 {
		if !b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, r.Group) {
			return errorResponse(r, kerr.GroupAuthorizationFailed, ""), nil
		}
		denied := partitionSplit(b, rc, kmsg.ACLOperationDescribe, &r.Topics, func(t *kmsg.OffsetFetchRequestTopic) string { return t.Topic })
		resp, err := next(rc, r)
		if err != nil {
			return resp, err
		}
		fr := resp.(*kmsg.OffsetFetchResponse)
		fr.Topics = slices.DeleteFunc(fr.Topics, func(t kmsg.OffsetFetchResponseTopic) bool { return !describeTopic(t.Topic) })
		if len(denied) > 0 {
			fr.Topics = append(fr.Topics, topicsDenied[*kmsg.OffsetFetchResponse](&kmsg.OffsetFetchRequest{Version: r.Version, Topics: denied}, nil).Topics...)
		}
		return fr, nil
	}
	var deniedGroups []kmsg.OffsetFetchResponseGroup
	deniedTopics := map[string][]kmsg.OffsetFetchRequestGroupTopic{}
	r.Groups = slices.DeleteFunc(r.Groups, func(g kmsg.OffsetFetchRequestGroup) bool {
		if !b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, g.Group) {
			d := kmsg.NewOffsetFetchResponseGroup()
			d.Group, d.ErrorCode = g.Group, kerr.GroupAuthorizationFailed.Code
			deniedGroups = append(deniedGroups, d)
			return true
		}
		return false
	})
	for i := range r.Groups {
		g := &r.Groups[i]
		if g.Topics != nil {
			deniedTopics[g.Group] = partitionSplit(b, rc, kmsg.ACLOperationDescribe, &g.Topics, func(t *kmsg.OffsetFetchRequestGroupTopic) string { return t.Topic })
		}
	}
	resp, err := next(rc, r)
	if err != nil {
		return resp, err
	}
	fr := resp.(*kmsg.OffsetFetchResponse)
	for i := range fr.Groups {
		g := &fr.Groups[i]
		g.Topics = slices.DeleteFunc(g.Topics, func(t kmsg.OffsetFetchResponseGroupTopic) bool { return !describeTopic(t.Topic) })
		if denied := deniedTopics[g.Group]; len(denied) > 0 {
			d := topicsDenied[*kmsg.OffsetFetchResponse](&kmsg.OffsetFetchRequest{Version: r.Version, Groups: []kmsg.OffsetFetchRequestGroup{{Group: g.Group, Topics: denied}}}, nil)
			g.Topics = append(g.Topics, d.Groups[0].Topics...)
		}
	}
	fr.Groups = append(fr.Groups, deniedGroups...)
	return fr, nil
}

// authorizeOffsetDelete: DELETE on the group, then READ on each topic.
func (b *Broker) authorizeOffsetDelete(rc *reqCtx, r *kmsg.OffsetDeleteRequest, next handlerFn) (kmsg.Response, error) {
	if !b.allowed(rc, kmsg.ACLOperationDelete, kmsg.ACLResourceTypeGroup, r.Group) {
		return errorResponse(r, kerr.GroupAuthorizationFailed, ""), nil
	}
	return topicsThen(b, rc, kmsg.ACLOperationRead, r, next, &r.Topics, func(t *kmsg.OffsetDeleteRequestTopic) string { return t.Topic },
		func(resp *kmsg.OffsetDeleteResponse, denied []kmsg.OffsetDeleteRequestTopic) {
			resp.Topics = append(resp.Topics, topicsDenied[*kmsg.OffsetDeleteResponse](&kmsg.OffsetDeleteRequest{Version: r.Version, Topics: denied}, nil).Topics...)
		})
}

// authorizeAddPartitionsToTxn: from clients (v0-3) WRITE on the
// transactional id, then WRITE on each topic: if any topic is denied,
// nothing is added and the others get OPERATION_NOT_ATTEMPTED. Brokers'
// batched requests (v4+) need CLUSTER_ACTION.
func (b *Broker) authorizeAddPartitionsToTxn(rc *reqCtx, r *kmsg.AddPartitionsToTxnRequest, next handlerFn) (kmsg.Response, error) {
	if rc.version >= 4 {
		if !b.allowedCluster(rc, kmsg.ACLOperationClusterAction) {
			return errorResponse(r, kerr.ClusterAuthorizationFailed, ""), nil
		}
		return next(rc, r)
	}
	if !b.allowed(rc, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, r.TransactionalID) {
		return errorResponse(r, kerr.TransactionalIDAuthorizationFailed, ""), nil
	}
	denied := map[string]bool{}
	for _, rt := range r.Topics {
		if !b.allowed(rc, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, rt.Topic) {
			denied[rt.Topic] = true
		}
	}
	if len(denied) == 0 {
		return next(rc, r)
	}
	resp := errorResponse(r, kerr.OperationNotAttempted, "").(*kmsg.AddPartitionsToTxnResponse)
	for i := range resp.Topics {
		if t := &resp.Topics[i]; denied[t.Topic] {
			for j := range t.Partitions {
				t.Partitions[j].ErrorCode = kerr.TopicAuthorizationFailed.Code
			}
		}
	}
	return resp, nil
}

// authorizeTxnOffsetCommit: WRITE on the transactional id, READ on the
// group, each failing the whole request, then READ on each topic.
func (b *Broker) authorizeTxnOffsetCommit(rc *reqCtx, r *kmsg.TxnOffsetCommitRequest, next handlerFn) (kmsg.Response, error) {
	switch {
	case !b.allowed(rc, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, r.TransactionalID):
		return errorResponse(r, kerr.TransactionalIDAuthorizationFailed, ""), nil
	case !b.allowed(rc, kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, r.Group):
		return errorResponse(r, kerr.GroupAuthorizationFailed, ""), nil
	}
	return topicsThen(b, rc, kmsg.ACLOperationRead, r, next, &r.Topics, func(t *kmsg.TxnOffsetCommitRequestTopic) string { return t.Topic },
		func(resp *kmsg.TxnOffsetCommitResponse, denied []kmsg.TxnOffsetCommitRequestTopic) {
			resp.Topics = append(resp.Topics, topicsDenied[*kmsg.TxnOffsetCommitResponse](&kmsg.TxnOffsetCommitRequest{Version: r.Version, Topics: denied}, nil).Topics...)
		})
}

func (b *Broker) authorizeDescribeProducers(rc *reqCtx, r *kmsg.DescribeProducersRequest, next handlerFn) (kmsg.Response, error) {
	return topicsThen(b, rc, kmsg.ACLOperationRead, r, next, &r.Topics, func(t *kmsg.DescribeProducersRequestTopic) string { return t.Topic },
		func(resp *kmsg.DescribeProducersResponse, denied []kmsg.DescribeProducersRequestTopic) {
			// With ApiError's message, as KafkaApis' partitionError.
			resp.Topics = append(resp.Topics, topicsDenied[*kmsg.DescribeProducersResponse](&kmsg.DescribeProducersRequest{Version: r.Version, Topics: denied}, topicDeniedMsg).Topics...)
		})
}

// authorizeDescribeTransactions: DESCRIBE on each transactional id, and
// only the topics that may be described are listed.
func (b *Broker) authorizeDescribeTransactions(rc *reqCtx, r *kmsg.DescribeTransactionsRequest, next handlerFn) (kmsg.Response, error) {
	var denied []kmsg.DescribeTransactionsResponseTransactionState
	r.TransactionalIDs = slices.DeleteFunc(r.TransactionalIDs, func(id string) bool {
		if b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, id) {
			return false
		}
		d := kmsg.NewDescribeTransactionsResponseTransactionState()
		d.TransactionalID, d.ErrorCode = id, kerr.TransactionalIDAuthorizationFailed.Code
		denied = append(denied, d)
		return true
	})
	resp, err := next(rc, r)
	if err != nil {
		return resp, err
	}
	dr := resp.(*kmsg.DescribeTransactionsResponse)
	for i := range dr.TransactionStates {
		s := &dr.TransactionStates[i]
		s.Topics = slices.DeleteFunc(s.Topics, func(t kmsg.DescribeTransactionsResponseTransactionStateTopic) bool {
			return !b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Topic)
		})
	}
	dr.TransactionStates = append(dr.TransactionStates, denied...)
	return dr, nil
}
