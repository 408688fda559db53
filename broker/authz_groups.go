package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The checks of KafkaApis for the KIP-848 consumer groups and the KIP-932
// share groups.

// describedGroupTopicsDenied is the message of a described group some of
// whose topics may not be described (Kafka's).
const describedGroupTopicsDenied = "The described group uses topics that the client is not authorized to describe."

func (b *Broker) allowedGroup(rc *reqCtx, op kmsg.ACLOperation, group string) bool {
	return b.allowed(rc, op, kmsg.ACLResourceTypeGroup, group)
}

func (b *Broker) allowedTopics(rc *reqCtx, op kmsg.ACLOperation, topics []string) bool {
	for _, t := range topics {
		if !b.allowed(rc, op, kmsg.ACLResourceTypeTopic, t) {
			return false
		}
	}
	return true
}

// authorizeGroupHeartbeat is ConsumerGroupHeartbeat's and
// ShareGroupHeartbeat's check: READ on the group, then DESCRIBE on every
// subscribed topic name (clients may not learn of topics they may not
// describe), each failing the whole request.
func (b *Broker) authorizeGroupHeartbeat(rc *reqCtx, r kmsg.Request, group string, topics []string, next handlerFn) (kmsg.Response, error) {
	switch {
	case !b.allowedGroup(rc, kmsg.ACLOperationRead, group):
		return errorResponse(r, kerr.GroupAuthorizationFailed, ""), nil
	case !b.allowedTopics(rc, kmsg.ACLOperationDescribe, topics):
		return errorResponse(r, kerr.TopicAuthorizationFailed, ""), nil
	}
	return next(rc, r)
}

// describeGroupsThen is the check of ConsumerGroupDescribe and
// ShareGroupDescribe: DESCRIBE on each group, else
// GROUP_AUTHORIZATION_FAILED for it; a described group using a topic that
// may not be described is answered TOPIC_AUTHORIZATION_FAILED instead, and
// the authorized-operations fields are filled in when asked for.
func describeGroupsThen[G any](b *Broker, rc *reqCtx, req kmsg.Request, next handlerFn, ids *[]string,
	denied func(id string, code int16, msg *string) G, groups func(kmsg.Response) *[]G, describe func(*G) (id string, code int16, topics []string),
) (kmsg.Response, error) {
	var out []G
	if b.acls.authz != nil {
		*ids = slices.DeleteFunc(*ids, func(id string) bool {
			if b.allowedGroup(rc, kmsg.ACLOperationDescribe, id) {
				return false
			}
			out = append(out, denied(id, kerr.GroupAuthorizationFailed.Code, nil))
			return true
		})
	}
	resp, err := next(rc, req)
	if err != nil {
		return resp, err
	}
	gs := groups(resp)
	for i := range *gs {
		id, code, topics := describe(&(*gs)[i])
		if code != 0 {
			continue
		}
		if !b.allowedTopics(rc, kmsg.ACLOperationDescribe, topics) {
			(*gs)[i] = denied(id, kerr.TopicAuthorizationFailed.Code, kmsg.StringPtr(describedGroupTopicsDenied))
		}
	}
	*gs = append(*gs, out...)
	return resp, nil
}

func (b *Broker) authorizeConsumerGroupDescribe(rc *reqCtx, r *kmsg.ConsumerGroupDescribeRequest, next handlerFn) (kmsg.Response, error) {
	return describeGroupsThen(b, rc, r, next, &r.Groups,
		func(id string, code int16, msg *string) kmsg.ConsumerGroupDescribeResponseGroup {
			g := kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group, g.ErrorCode, g.ErrorMessage = id, code, msg
			return g
		},
		func(resp kmsg.Response) *[]kmsg.ConsumerGroupDescribeResponseGroup {
			return &resp.(*kmsg.ConsumerGroupDescribeResponse).Groups
		},
		func(g *kmsg.ConsumerGroupDescribeResponseGroup) (string, int16, []string) {
			if g.ErrorCode == 0 && r.IncludeAuthorizedOperations {
				g.AuthorizedOperations = b.operations(rc, kmsg.ACLResourceTypeGroup, g.Group)
			}
			var topics []string
			for _, m := range g.Members {
				topics = append(topics, m.SubscribedTopics...)
				for _, a := range []kmsg.Assignment{m.Assignment, m.TargetAssignment} {
					for _, tp := range a.TopicPartitions {
						if tp.Topic != "" { // a topic deleted since
							topics = append(topics, tp.Topic)
						}
					}
				}
			}
			return g.Group, g.ErrorCode, topics
		})
}

func (b *Broker) authorizeShareGroupDescribe(rc *reqCtx, r *kmsg.ShareGroupDescribeRequest, next handlerFn) (kmsg.Response, error) {
	return describeGroupsThen(b, rc, r, next, &r.GroupIDs,
		func(id string, code int16, msg *string) kmsg.ShareGroupDescribeResponseGroup {
			g := kmsg.NewShareGroupDescribeResponseGroup()
			g.GroupID, g.ErrorCode, g.ErrorMessage = id, code, msg
			return g
		},
		func(resp kmsg.Response) *[]kmsg.ShareGroupDescribeResponseGroup {
			return &resp.(*kmsg.ShareGroupDescribeResponse).Groups
		},
		func(g *kmsg.ShareGroupDescribeResponseGroup) (string, int16, []string) {
			if g.ErrorCode == 0 && r.IncludeAuthorizedOperations {
				g.AuthorizedOperations = b.operations(rc, kmsg.ACLResourceTypeGroup, g.GroupID)
			}
			var topics []string
			for _, m := range g.Members {
				topics = append(topics, m.SubscribedTopicNames...)
				for _, tp := range m.Assignment.TopicPartitions {
					if tp.Topic != "" { // a topic deleted since
						topics = append(topics, tp.Topic)
					}
				}
			}
			return g.GroupID, g.ErrorCode, topics
		})
}

// shareGroupDenied is the whole-request answer of ShareFetch and
// ShareAcknowledge without READ on the group: the top-level error alone,
// as their getErrorResponse gives it.
func (b *Broker) shareGroupDenied(rc *reqCtx, r kmsg.Request, group *string) kmsg.Response {
	if b.allowedGroup(rc, kmsg.ACLOperationRead, deref(group)) {
		return nil
	}
	resp := r.ResponseKind()
	switch sr := resp.(type) {
	case *kmsg.ShareFetchResponse:
		sr.ErrorCode = kerr.GroupAuthorizationFailed.Code
	case *kmsg.ShareAcknowledgeResponse:
		sr.ErrorCode = kerr.GroupAuthorizationFailed.Code
	}
	return resp
}

// authorizeShareFetch: READ on the group, then READ on each topic. Kafka
// checks every partition of the share session on every fetch, so a topic
// whose READ was taken away after it joined the session is answered
// TOPIC_AUTHORIZATION_FAILED too, its records withheld (their acquisition
// lock then lapses and they go to other consumers); a denied topic's
// acknowledgements are not applied.
func (b *Broker) authorizeShareFetch(rc *reqCtx, r *kmsg.ShareFetchRequest, next handlerFn) (kmsg.Response, error) {
	if resp := b.shareGroupDenied(rc, r, r.GroupID); resp != nil {
		return resp, nil
	}
	readable := func(id [16]byte) bool {
		name := b.topicNameOr("", id)
		return name == "" || b.allowed(rc, kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, name)
	}
	denied := partitionSplit(b, rc, kmsg.ACLOperationRead, &r.Topics, func(t *kmsg.ShareFetchRequestTopic) string { return b.topicNameOr("", t.TopicID) })
	if len(denied) > 0 && len(r.Topics) == 0 && r.ShareSessionEpoch == 0 {
		// A new session of nothing but denied topics: nothing to wait for.
		r.MaxWaitMillis = 0
	}
	resp, err := next(rc, r)
	if err != nil {
		return resp, err
	}
	fr := resp.(*kmsg.ShareFetchResponse)
	for i := range fr.Topics {
		t := &fr.Topics[i]
		if readable(t.TopicID) {
			continue
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.ErrorCode, p.ErrorMessage = kerr.TopicAuthorizationFailed.Code, nil
			p.Records, p.AcquiredRecords = nil, nil
		}
	}
	if len(denied) == 0 || fr.ErrorCode != 0 {
		return fr, nil // a session's error is answered alone, as Kafka's getErrorResponse
	}
	d := topicsDenied[*kmsg.ShareFetchResponse](&kmsg.ShareFetchRequest{Version: r.Version, Topics: denied}, nil)
	for i, rt := range denied {
		for j, rp := range rt.Partitions {
			// The acknowledgements a denied partition carried fail too
			// (KafkaApis answers them as ShareAcknowledge does).
			if len(rp.AcknowledgementBatches) > 0 {
				d.Topics[i].Partitions[j].AcknowledgeErrorCode = kerr.TopicAuthorizationFailed.Code
			}
		}
	}
	fr.Topics = append(fr.Topics, d.Topics...)
	return fr, nil
}

// authorizeShareAcknowledge: READ on the group, then READ on each topic.
func (b *Broker) authorizeShareAcknowledge(rc *reqCtx, r *kmsg.ShareAcknowledgeRequest, next handlerFn) (kmsg.Response, error) {
	if resp := b.shareGroupDenied(rc, r, r.GroupID); resp != nil {
		return resp, nil
	}
	return topicsThen(b, rc, kmsg.ACLOperationRead, r, next, &r.Topics, func(t *kmsg.ShareAcknowledgeRequestTopic) string { return b.topicNameOr("", t.TopicID) },
		func(resp *kmsg.ShareAcknowledgeResponse, denied []kmsg.ShareAcknowledgeRequestTopic) {
			if resp.ErrorCode != 0 {
				return // a session's error is answered alone, as Kafka's getErrorResponse
			}
			resp.Topics = append(resp.Topics, topicsDenied[*kmsg.ShareAcknowledgeResponse](&kmsg.ShareAcknowledgeRequest{Version: r.Version, Topics: denied}, nil).Topics...)
		})
}

// authorizeDescribeShareGroupOffsets: DESCRIBE on each group, then
// DESCRIBE on the topics: named ones that may not be described get
// TOPIC_AUTHORIZATION_FAILED, a request for all the group's topics leaves
// them out.
func (b *Broker) authorizeDescribeShareGroupOffsets(rc *reqCtx, r *kmsg.DescribeShareGroupOffsetsRequest, next handlerFn) (kmsg.Response, error) {
	var deniedGroups []kmsg.DescribeShareGroupOffsetsResponseGroup
	r.Groups = slices.DeleteFunc(r.Groups, func(g kmsg.DescribeShareGroupOffsetsRequestGroup) bool {
		if b.allowedGroup(rc, kmsg.ACLOperationDescribe, g.GroupID) {
			return false
		}
		d := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		d.GroupID, d.ErrorCode = g.GroupID, kerr.GroupAuthorizationFailed.Code // without a message, as KafkaApis
		deniedGroups = append(deniedGroups, d)
		return true
	})
	deniedTopics := map[string][]kmsg.DescribeShareGroupOffsetsRequestGroupTopic{}
	for i := range r.Groups {
		if g := &r.Groups[i]; g.Topics != nil {
			deniedTopics[g.GroupID] = partitionSplit(b, rc, kmsg.ACLOperationDescribe, &g.Topics, func(t *kmsg.DescribeShareGroupOffsetsRequestGroupTopic) string { return t.Topic })
		}
	}
	resp, err := next(rc, r)
	if err != nil {
		return resp, err
	}
	dr := resp.(*kmsg.DescribeShareGroupOffsetsResponse)
	for i := range dr.Groups {
		g := &dr.Groups[i]
		g.Topics = slices.DeleteFunc(g.Topics, func(t kmsg.DescribeShareGroupOffsetsResponseGroupTopic) bool {
			return !b.allowed(rc, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Topic)
		})
		if denied := deniedTopics[g.GroupID]; len(denied) > 0 {
			d := topicsDenied[*kmsg.DescribeShareGroupOffsetsResponse](&kmsg.DescribeShareGroupOffsetsRequest{
				Version: r.Version, Groups: []kmsg.DescribeShareGroupOffsetsRequestGroup{{GroupID: g.GroupID, Topics: denied}},
			}, topicDeniedMsg)
			g.Topics = append(g.Topics, d.Groups[0].Topics...)
		}
	}
	dr.Groups = append(dr.Groups, deniedGroups...)
	return dr, nil
}

// authorizeAlterShareGroupOffsets: READ on the group, failing the whole
// request, then READ on each topic.
func (b *Broker) authorizeAlterShareGroupOffsets(rc *reqCtx, r *kmsg.AlterShareGroupOffsetsRequest, next handlerFn) (kmsg.Response, error) {
	if !b.allowedGroup(rc, kmsg.ACLOperationRead, r.GroupID) {
		return errorResponse(r, kerr.GroupAuthorizationFailed, ""), nil
	}
	return topicsThen(b, rc, kmsg.ACLOperationRead, r, next, &r.Topics, func(t *kmsg.AlterShareGroupOffsetsRequestTopic) string { return t.Topic },
		func(resp *kmsg.AlterShareGroupOffsetsResponse, denied []kmsg.AlterShareGroupOffsetsRequestTopic) {
			if resp.ErrorCode != 0 {
				return // Kafka answers a group's error alone
			}
			d := topicsDenied[*kmsg.AlterShareGroupOffsetsResponse](&kmsg.AlterShareGroupOffsetsRequest{Version: r.Version, Topics: denied}, topicDeniedMsg)
			for i := range d.Topics {
				// Kafka's builder names a denied topic by its id too.
				if t := b.topics.get(d.Topics[i].Topic); t != nil {
					d.Topics[i].TopicID = t.id
				}
			}
			resp.Topics = append(resp.Topics, d.Topics...)
		})
}

// authorizeDeleteShareGroupOffsets: DELETE on the group, failing the whole
// request, then READ on each topic.
func (b *Broker) authorizeDeleteShareGroupOffsets(rc *reqCtx, r *kmsg.DeleteShareGroupOffsetsRequest, next handlerFn) (kmsg.Response, error) {
	if !b.allowedGroup(rc, kmsg.ACLOperationDelete, r.GroupID) {
		return errorResponse(r, kerr.GroupAuthorizationFailed, ""), nil
	}
	return topicsThen(b, rc, kmsg.ACLOperationRead, r, next, &r.Topics, func(t *kmsg.DeleteShareGroupOffsetsRequestTopic) string { return t.Topic },
		func(resp *kmsg.DeleteShareGroupOffsetsResponse, denied []kmsg.DeleteShareGroupOffsetsRequestTopic) {
			if resp.ErrorCode != 0 {
				return // Kafka answers a group's error alone
			}
			resp.Topics = append(resp.Topics, topicsDenied[*kmsg.DeleteShareGroupOffsetsResponse](&kmsg.DeleteShareGroupOffsetsRequest{Version: r.Version, Topics: denied}, topicDeniedMsg).Topics...)
		})
}
