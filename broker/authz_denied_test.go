package broker

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAuthorizationDeniedTopicAnswers checks, over the wire, the whole entry each API
// gives a topic the principal may not use, against Kafka's (KafkaApis',
// or the controller's for the APIs it answers): the error, the -1 fields
// and the message, next to the handler's answer for a topic it may use;
// and the answers of the requests refused as a whole that getErrorResponse
// gives with the top-level error alone.
func TestAuthorizationDeniedTopicAnswers(t *testing.T) {
	// rawConn's client id is bob's: a share session lives as long as the
	// connection that opened it.
	b := NewTest(t, WithAuthorizer("User:admin"), WithTestPrincipal(func(id string) string {
		if id == "test" {
			id = "bob"
		}
		return "User:" + id
	}))
	createTestTopic(t, b, "ok", 1)
	createTestTopic(t, b, "d", 1)
	okID, dID := b.topics.get("ok").id, b.topics.get("d").id
	acls := kmsg.NewPtrCreateACLsRequest()
	acls.SetVersion(3)
	for _, r := range []struct {
		rt   kmsg.ACLResourceType
		name string
	}{{kmsg.ACLResourceTypeTopic, "ok"}, {kmsg.ACLResourceTypeGroup, "g"}, {kmsg.ACLResourceTypeGroup, "sg"}, {kmsg.ACLResourceTypeTransactionalId, "tx"}} {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = r.rt, r.name, kmsg.ACLResourcePatternTypeLiteral
		c.Principal, c.Host, c.Operation, c.PermissionType = "User:bob", "*", kmsg.ACLOperationAll, kmsg.ACLPermissionTypeAllow
		acls.Creations = append(acls.Creations, c)
	}
	for _, r := range sendAs(t, b, "admin", acls).(*kmsg.CreateACLsResponse).Results {
		if r.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(r.ErrorCode))
		}
	}
	const denied, kafkaMsg = 29, "Topic authorization failed."
	// same compares an entry with Kafka's, an empty array as none.
	same := func(what string, got, want any) {
		t.Helper()
		g, w := reflect.ValueOf(got), reflect.ValueOf(want)
		nilEmpty(g)
		if !reflect.DeepEqual(g.Elem().Interface(), w.Elem().Interface()) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			t.Errorf("%s:\n got %s\nwant %s", what, gj, wj)
		}
	}
	allowed := func(what string, code int16) {
		t.Helper()
		if code == denied {
			t.Errorf("%s: the topic that may be used was refused", what)
		}
	}
	msg := kmsg.StringPtr

	t.Run("Produce", func(t *testing.T) {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks, req.TimeoutMillis = 1, 5000
		for _, name := range []string{"ok", "d"} {
			req.Topics = append(req.Topics, kmsg.ProduceRequestTopic{Topic: name, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0}}})
		}
		resp := sendAs(t, b, "bob", req).(*kmsg.ProduceResponse)
		if len(resp.Topics) != 2 || resp.Topics[1].Topic != "d" {
			t.Fatalf("topics %+v", resp.Topics)
		}
		allowed("Produce", resp.Topics[0].Partitions[0].ErrorCode)
		want := kmsg.NewProduceResponseTopicPartition()
		want.ErrorCode, want.BaseOffset = denied, -1
		same("Produce d", &resp.Topics[1].Partitions[0], &want)

		// A transactional id that may not be written: every partition,
		// with getErrorResponse's message.
		req.TransactionID = msg("nope")
		resp = sendAs(t, b, "bob", req).(*kmsg.ProduceResponse)
		if len(resp.Topics) != 2 {
			t.Fatalf("topics %+v", resp.Topics)
		}
		want.ErrorCode, want.ErrorMessage = kerr.TransactionalIDAuthorizationFailed.Code, msg("Transactional Id authorization failed.")
		for _, rt := range resp.Topics {
			same("Produce "+rt.Topic+" with a denied transactional id", &rt.Partitions[0], &want)
		}
	})

	t.Run("Fetch", func(t *testing.T) {
		for _, v := range []int16{11, 16} {
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(v)
			req.ReplicaID, req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = -1, 10, 1<<20, -1
			for _, tp := range []struct {
				name string
				id   [16]byte
			}{{"ok", okID}, {"d", dID}} {
				rt := kmsg.NewFetchRequestTopic()
				if v >= 13 {
					rt.TopicID = tp.id
				} else {
					rt.Topic = tp.name
				}
				p := kmsg.NewFetchRequestTopicPartition()
				p.PartitionMaxBytes, p.LogStartOffset = 1<<20, 5
				rt.Partitions = append(rt.Partitions, p)
				req.Topics = append(req.Topics, rt)
			}
			resp := sendAs(t, b, "bob", req).(*kmsg.FetchResponse)
			if len(resp.Topics) != 2 {
				t.Fatalf("v%d topics %+v", v, resp.Topics)
			}
			allowed("Fetch", resp.Topics[0].Partitions[0].ErrorCode)
			if v >= 13 && resp.Topics[1].TopicID != dID || v < 13 && resp.Topics[1].Topic != "d" {
				t.Errorf("v%d: the denied topic is named %q %x", v, resp.Topics[1].Topic, resp.Topics[1].TopicID)
			}
			// FetchResponse.partitionResponse: the high watermark -1 too.
			want := kmsg.NewFetchResponseTopicPartition()
			want.ErrorCode, want.HighWatermark = denied, -1
			same("Fetch d", &resp.Topics[1].Partitions[0], &want)
		}
	})

	t.Run("ListOffsets", func(t *testing.T) {
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(7)
		req.ReplicaID = -1
		for _, name := range []string{"ok", "d"} {
			p := kmsg.NewListOffsetsRequestTopicPartition()
			p.Timestamp = -2
			req.Topics = append(req.Topics, kmsg.ListOffsetsRequestTopic{Topic: name, Partitions: []kmsg.ListOffsetsRequestTopicPartition{p}})
		}
		resp := sendAs(t, b, "bob", req).(*kmsg.ListOffsetsResponse)
		if len(resp.Topics) != 2 || resp.Topics[1].Topic != "d" {
			t.Fatalf("topics %+v", resp.Topics)
		}
		allowed("ListOffsets", resp.Topics[0].Partitions[0].ErrorCode)
		want := kmsg.NewListOffsetsResponseTopicPartition()
		want.ErrorCode = denied
		same("ListOffsets d", &resp.Topics[1].Partitions[0], &want)
	})

	t.Run("OffsetForLeaderEpoch", func(t *testing.T) {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.SetVersion(4)
		req.ReplicaID = -1
		for _, name := range []string{"ok", "d"} {
			req.Topics = append(req.Topics, kmsg.OffsetForLeaderEpochRequestTopic{Topic: name,
				Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, LeaderEpoch: 3}}})
		}
		resp := sendAs(t, b, "bob", req).(*kmsg.OffsetForLeaderEpochResponse)
		if len(resp.Topics) != 2 || resp.Topics[1].Topic != "d" {
			t.Fatalf("topics %+v", resp.Topics)
		}
		allowed("OffsetForLeaderEpoch", resp.Topics[0].Partitions[0].ErrorCode)
		want := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
		want.ErrorCode = denied
		same("OffsetForLeaderEpoch d", &resp.Topics[1].Partitions[0], &want)
	})

	t.Run("Metadata", func(t *testing.T) {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: msg("ok")}, {Topic: msg("d")}, {TopicID: dID}}
		resp := sendAs(t, b, "bob", req).(*kmsg.MetadataResponse)
		if len(resp.Topics) != 3 {
			t.Fatalf("topics %+v", resp.Topics)
		}
		allowed("Metadata", resp.Topics[0].ErrorCode)
		// Named, it stays unnamed by id; by id, the id is no secret.
		want := kmsg.NewMetadataResponseTopic()
		want.Topic, want.ErrorCode = msg("d"), denied
		same("Metadata d", &resp.Topics[1], &want)
		want.Topic, want.TopicID = nil, dID
		same("Metadata d by id", &resp.Topics[2], &want)
	})

	t.Run("DescribeTopicPartitions", func(t *testing.T) {
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		req.ResponsePartitionLimit = 10
		req.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: "ok"}, {Topic: "d"}}
		resp := sendAs(t, b, "bob", req).(*kmsg.DescribeTopicPartitionsResponse)
		if len(resp.Topics) != 2 {
			t.Fatalf("topics %+v", resp.Topics)
		}
		allowed("DescribeTopicPartitions", resp.Topics[0].ErrorCode)
		want := kmsg.NewDescribeTopicPartitionsResponseTopic()
		want.Topic, want.ErrorCode = msg("d"), denied
		same("DescribeTopicPartitions d", &resp.Topics[1], &want)
		req.Topics = req.Topics[1:]
		resp = sendAs(t, b, "bob", req).(*kmsg.DescribeTopicPartitionsResponse)
		if len(resp.Topics) != 1 {
			t.Fatalf("denied topic alone: topics %+v", resp.Topics)
		}
		same("DescribeTopicPartitions d alone", &resp.Topics[0], &want)
	})

	t.Run("CreateTopics", func(t *testing.T) {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.SetVersion(7)
		req.TimeoutMillis = 5000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "newd", 3, 1
		rt.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms", Value: msg("1000")}}
		req.Topics = append(req.Topics, rt)
		resp := sendAs(t, b, "bob", req).(*kmsg.CreateTopicsResponse)
		if len(resp.Topics) != 1 {
			t.Fatalf("topics %+v", resp.Topics)
		}
		// ControllerApis.createTopics' answer.
		want := kmsg.NewCreateTopicsResponseTopic()
		want.Topic, want.ErrorCode, want.ErrorMessage = "newd", denied, msg("Authorization failed.")
		same("CreateTopics newd", &resp.Topics[0], &want)
	})

	t.Run("DeleteTopics", func(t *testing.T) {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.SetVersion(6)
		req.TimeoutMillis = 5000
		req.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: msg("d")}, {TopicID: dID}}
		resp := sendAs(t, b, "bob", req).(*kmsg.DeleteTopicsResponse)
		if len(resp.Topics) != 2 {
			t.Fatalf("topics %+v", resp.Topics)
		}
		// ControllerApis.deleteTopics: ApiError(TOPIC_AUTHORIZATION_FAILED),
		// without the name of a topic given by id that may not be described.
		want := kmsg.NewDeleteTopicsResponseTopic()
		want.Topic, want.ErrorCode, want.ErrorMessage = msg("d"), denied, msg(kafkaMsg)
		same("DeleteTopics d", &resp.Topics[0], &want)
		want.Topic, want.TopicID = nil, dID
		same("DeleteTopics d by id", &resp.Topics[1], &want)
	})

	t.Run("CreatePartitions", func(t *testing.T) {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.SetVersion(3)
		req.TimeoutMillis = 5000
		req.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "d", Count: 2}}
		resp := sendAs(t, b, "bob", req).(*kmsg.CreatePartitionsResponse)
		if len(resp.Topics) != 1 {
			t.Fatalf("topics %+v", resp.Topics)
		}
		// ControllerApis.createPartitions: no message.
		want := kmsg.NewCreatePartitionsResponseTopic()
		want.Topic, want.ErrorCode = "d", denied
		same("CreatePartitions d", &resp.Topics[0], &want)
	})

	t.Run("DeleteRecords", func(t *testing.T) {
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.SetVersion(2)
		req.TimeoutMillis = 5000
		for _, name := range []string{"ok", "d"} {
			req.Topics = append(req.Topics, kmsg.DeleteRecordsRequestTopic{Topic: name, Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 0}}})
		}
		resp := sendAs(t, b, "bob", req).(*kmsg.DeleteRecordsResponse)
		if len(resp.Topics) != 2 || resp.Topics[1].Topic != "d" {
			t.Fatalf("topics %+v", resp.Topics)
		}
		allowed("DeleteRecords", resp.Topics[0].Partitions[0].ErrorCode)
		want := kmsg.NewDeleteRecordsResponseTopicPartition()
		want.ErrorCode, want.LowWatermark = denied, -1
		same("DeleteRecords d", &resp.Topics[1].Partitions[0], &want)
	})

	t.Run("OffsetCommit", func(t *testing.T) {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.SetVersion(8)
		req.Group, req.Generation = "g", -1
		for _, name := range []string{"ok", "d"} {
			p := kmsg.NewOffsetCommitRequestTopicPartition()
			p.Offset = 1
			req.Topics = append(req.Topics, kmsg.OffsetCommitRequestTopic{Topic: name, Partitions: []kmsg.OffsetCommitRequestTopicPartition{p}})
		}
		resp := sendAs(t, b, "bob", req).(*kmsg.OffsetCommitResponse)
		if len(resp.Topics) != 2 || resp.Topics[1].Topic != "d" {
			t.Fatalf("topics %+v", resp.Topics)
		}
		allowed("OffsetCommit", resp.Topics[0].Partitions[0].ErrorCode)
		want := kmsg.NewOffsetCommitResponseTopicPartition()
		want.ErrorCode = denied
		same("OffsetCommit d", &resp.Topics[1].Partitions[0], &want)
	})

	t.Run("OffsetFetch", func(t *testing.T) {
		want := kmsg.NewOffsetFetchResponseTopicPartition()
		want.ErrorCode, want.Offset, want.Metadata = denied, -1, msg("")
		for _, v := range []int16{1, 7} {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.SetVersion(v)
			req.Group = "g"
			req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "ok", Partitions: []int32{0}}, {Topic: "d", Partitions: []int32{0}}}
			resp := sendAs(t, b, "bob", req).(*kmsg.OffsetFetchResponse)
			if len(resp.Topics) != 2 || resp.Topics[1].Topic != "d" {
				t.Fatalf("v%d topics %+v", v, resp.Topics)
			}
			allowed("OffsetFetch", resp.Topics[0].Partitions[0].ErrorCode)
			same("OffsetFetch d", &resp.Topics[1].Partitions[0], &want)
		}
		req := kmsg.NewPtrOffsetFetchRequest()
		req.SetVersion(8)
		req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "ok", Partitions: []int32{0}}, {Topic: "d", Partitions: []int32{0}}}}}
		resp := sendAs(t, b, "bob", req).(*kmsg.OffsetFetchResponse)
		if len(resp.Groups) != 1 || len(resp.Groups[0].Topics) != 2 || resp.Groups[0].Topics[1].Topic != "d" {
			t.Fatalf("v8 groups %+v", resp.Groups)
		}
		allowed("OffsetFetch v8", resp.Groups[0].Topics[0].Partitions[0].ErrorCode)
		wantG := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		wantG.ErrorCode, wantG.Offset, wantG.Metadata = denied, -1, msg("")
		same("OffsetFetch v8 d", &resp.Groups[0].Topics[1].Partitions[0], &wantG)

		// A group that may not be described: per partition before v2,
		// the top-level error alone from v2 (getErrorResponse).
		for _, v := range []int16{1, 7} {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.SetVersion(v)
			req.Group = "nog"
			req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "ok", Partitions: []int32{0}}}
			resp := sendAs(t, b, "bob", req).(*kmsg.OffsetFetchResponse)
			if v >= 2 {
				if resp.ErrorCode != kerr.GroupAuthorizationFailed.Code || len(resp.Topics) != 0 {
					t.Errorf("v%d group denied: %v, topics %+v", v, kerr.ErrorForCode(resp.ErrorCode), resp.Topics)
				}
				continue
			}
			if len(resp.Topics) != 1 {
				t.Fatalf("v%d group denied: topics %+v", v, resp.Topics)
			}
			want := want
			want.ErrorCode = kerr.GroupAuthorizationFailed.Code
			same("OffsetFetch v1 group denied", &resp.Topics[0].Partitions[0], &want)
		}
	})

	t.Run("OffsetDelete", func(t *testing.T) {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = "g"
		req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "d", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
		resp := sendAs(t, b, "bob", req).(*kmsg.OffsetDeleteResponse)
		if len(resp.Topics) != 1 || resp.Topics[0].Topic != "d" {
			t.Fatalf("topics %+v", resp.Topics)
		}
		want := kmsg.NewOffsetDeleteResponseTopicPartition()
		want.ErrorCode = denied
		same("OffsetDelete d", &resp.Topics[0].Partitions[0], &want)
		req.Group = "nog"
		resp = sendAs(t, b, "bob", req).(*kmsg.OffsetDeleteResponse)
		if resp.ErrorCode != kerr.GroupAuthorizationFailed.Code || len(resp.Topics) != 0 {
			t.Errorf("group denied: %v, topics %+v", kerr.ErrorForCode(resp.ErrorCode), resp.Topics)
		}
	})

	t.Run("TxnOffsetCommit", func(t *testing.T) {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.SetVersion(3)
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = "tx", "g", 1, 0, -1
		req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "d", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
		resp := sendAs(t, b, "bob", req).(*kmsg.TxnOffsetCommitResponse)
		if len(resp.Topics) == 0 || resp.Topics[len(resp.Topics)-1].Topic != "d" {
			t.Fatalf("topics %+v", resp.Topics)
		}
		want := kmsg.NewTxnOffsetCommitResponseTopicPartition()
		want.ErrorCode = denied
		same("TxnOffsetCommit d", &resp.Topics[len(resp.Topics)-1].Partitions[0], &want)
	})

	t.Run("AddPartitionsToTxn", func(t *testing.T) {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.SetVersion(3)
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = "tx", 1, 0
		req.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "ok", Partitions: []int32{0}}, {Topic: "d", Partitions: []int32{0}}}
		resp := sendAs(t, b, "bob", req).(*kmsg.AddPartitionsToTxnResponse)
		if len(resp.Topics) != 2 {
			t.Fatalf("topics %+v", resp.Topics)
		}
		for _, rt := range resp.Topics {
			want := kerr.OperationNotAttempted.Code
			if rt.Topic == "d" {
				want = denied
			}
			if len(rt.Partitions) != 1 || rt.Partitions[0].ErrorCode != want {
				t.Errorf("AddPartitionsToTxn %s: %+v, want %v", rt.Topic, rt.Partitions, kerr.ErrorForCode(want))
			}
		}
	})

	t.Run("DescribeProducers", func(t *testing.T) {
		req := kmsg.NewPtrDescribeProducersRequest()
		req.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "ok", Partitions: []int32{0}}, {Topic: "d", Partitions: []int32{0}}}
		resp := sendAs(t, b, "bob", req).(*kmsg.DescribeProducersResponse)
		if len(resp.Topics) != 2 || resp.Topics[1].Topic != "d" {
			t.Fatalf("topics %+v", resp.Topics)
		}
		allowed("DescribeProducers", resp.Topics[0].Partitions[0].ErrorCode)
		// KafkaApis' partitionError: ApiError's message.
		want := kmsg.NewDescribeProducersResponseTopicPartition()
		want.ErrorCode, want.ErrorMessage = denied, msg(kafkaMsg)
		same("DescribeProducers d", &resp.Topics[1].Partitions[0], &want)
	})

	shareConn := dial(t, b)
	t.Run("ShareFetch", func(t *testing.T) {
		req := kmsg.NewPtrShareFetchRequest()
		req.SetVersion(1)
		req.GroupID, req.MemberID, req.ShareSessionEpoch = msg("sg"), msg("bob-member"), 0
		req.MaxWaitMillis, req.MinBytes, req.MaxRecords, req.BatchSize = 10, 1, 100, 100
		req.Topics = []kmsg.ShareFetchRequestTopic{{TopicID: dID, Partitions: []kmsg.ShareFetchRequestTopicPartition{{Partition: 0}}}}
		resp := shareConn.roundTrip(req).(*kmsg.ShareFetchResponse)
		if len(resp.Topics) != 1 || resp.Topics[0].TopicID != dID {
			t.Fatalf("%v, topics %+v", kerr.ErrorForCode(resp.ErrorCode), resp.Topics)
		}
		want := kmsg.NewShareFetchResponseTopicPartition()
		want.ErrorCode = denied
		same("ShareFetch d", &resp.Topics[0].Partitions[0], &want)
		// Acknowledgements of a denied partition fail with it.
		req.ShareSessionEpoch = 1
		req.Topics[0].Partitions[0].AcknowledgementBatches = []kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{{FirstOffset: 0, LastOffset: 0, AcknowledgeTypes: []int8{1}}}
		resp = shareConn.roundTrip(req).(*kmsg.ShareFetchResponse)
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].TopicID != dID {
			t.Fatalf("%v, topics %+v", kerr.ErrorForCode(resp.ErrorCode), resp.Topics)
		}
		want.AcknowledgeErrorCode = denied
		same("ShareFetch d with acknowledgements", &resp.Topics[len(resp.Topics)-1].Partitions[0], &want)
	})

	t.Run("ShareAcknowledge", func(t *testing.T) {
		req := kmsg.NewPtrShareAcknowledgeRequest()
		req.SetVersion(1)
		req.GroupID, req.MemberID, req.ShareSessionEpoch = msg("sg"), msg("bob-member"), 2
		batch := kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{FirstOffset: 0, LastOffset: 0, AcknowledgeTypes: []int8{1}}
		req.Topics = []kmsg.ShareAcknowledgeRequestTopic{{TopicID: dID, Partitions: []kmsg.ShareAcknowledgeRequestTopicPartition{{Partition: 0, AcknowledgementBatches: []kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{batch}}}}}
		resp := shareConn.roundTrip(req).(*kmsg.ShareAcknowledgeResponse)
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].TopicID != dID {
			t.Fatalf("%v, topics %+v", kerr.ErrorForCode(resp.ErrorCode), resp.Topics)
		}
		want := kmsg.NewShareAcknowledgeResponseTopicPartition()
		want.ErrorCode = denied
		same("ShareAcknowledge d", &resp.Topics[len(resp.Topics)-1].Partitions[0], &want)
	})

	t.Run("DescribeShareGroupOffsets", func(t *testing.T) {
		req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		req.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{
			{GroupID: "sg", Topics: []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "d", Partitions: []int32{0}}}},
			{GroupID: "nog", Topics: []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "ok", Partitions: []int32{0}}}},
		}
		resp := sendAs(t, b, "bob", req).(*kmsg.DescribeShareGroupOffsetsResponse)
		if len(resp.Groups) != 2 || len(resp.Groups[0].Topics) != 1 || resp.Groups[0].Topics[0].Topic != "d" {
			t.Fatalf("groups %+v", resp.Groups)
		}
		want := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
		want.StartOffset, want.ErrorCode, want.ErrorMessage = -1, denied, msg(kafkaMsg)
		same("DescribeShareGroupOffsets d", &resp.Groups[0].Topics[0].Partitions[0], &want)
		wantG := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		wantG.GroupID, wantG.ErrorCode = "nog", kerr.GroupAuthorizationFailed.Code
		same("DescribeShareGroupOffsets group denied", &resp.Groups[1], &wantG)
	})

	t.Run("AlterShareGroupOffsets", func(t *testing.T) {
		req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
		req.GroupID = "sg"
		req.Topics = []kmsg.AlterShareGroupOffsetsRequestTopic{{Topic: "d", Partitions: []kmsg.AlterShareGroupOffsetsRequestTopicPartition{{Partition: 0, StartOffset: 0}}}}
		resp := sendAs(t, b, "bob", req).(*kmsg.AlterShareGroupOffsetsResponse)
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != "d" {
			t.Fatalf("%v, topics %+v", kerr.ErrorForCode(resp.ErrorCode), resp.Topics)
		}
		if id := resp.Topics[len(resp.Topics)-1].TopicID; id != dID {
			t.Errorf("AlterShareGroupOffsets d: topic id %x, want %x", id, dID)
		}
		want := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
		want.ErrorCode, want.ErrorMessage = denied, msg(kafkaMsg)
		same("AlterShareGroupOffsets d", &resp.Topics[len(resp.Topics)-1].Partitions[0], &want)
		req.GroupID = "nog"
		resp = sendAs(t, b, "bob", req).(*kmsg.AlterShareGroupOffsetsResponse)
		if resp.ErrorCode != kerr.GroupAuthorizationFailed.Code || resp.ErrorMessage == nil || *resp.ErrorMessage != "Group authorization failed." || len(resp.Topics) != 0 {
			t.Errorf("group denied: %+v", resp)
		}
	})

	shareHeartbeat := func(epoch int32) {
		t.Helper()
		hb := kmsg.NewPtrShareGroupHeartbeatRequest()
		hb.SetVersion(1)
		hb.GroupID, hb.MemberID, hb.MemberEpoch, hb.SubscribedTopicNames = "sg", "bob-member", epoch, []string{"ok"}
		if r := sendAs(t, b, "bob", hb).(*kmsg.ShareGroupHeartbeatResponse); r.ErrorCode != 0 {
			t.Fatalf("share group heartbeat at epoch %d: %v", epoch, kerr.ErrorForCode(r.ErrorCode))
		}
	}

	t.Run("DeleteShareGroupOffsets", func(t *testing.T) {
		req := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
		req.GroupID = "sg"
		req.Topics = []kmsg.DeleteShareGroupOffsetsRequestTopic{{Topic: "d"}}
		// The handler's group error is answered alone (KafkaApis sends
		// getErrorResponse then).
		resp := sendAs(t, b, "bob", req).(*kmsg.DeleteShareGroupOffsetsResponse)
		if resp.ErrorCode != kerr.GroupIDNotFound.Code || len(resp.Topics) != 0 {
			t.Errorf("no such group: %v, topics %+v", kerr.ErrorForCode(resp.ErrorCode), resp.Topics)
		}
		shareHeartbeat(0)
		shareHeartbeat(-1) // sg exists, empty
		resp = sendAs(t, b, "bob", req).(*kmsg.DeleteShareGroupOffsetsResponse)
		if len(resp.Topics) != 1 {
			t.Fatalf("%v, topics %+v", kerr.ErrorForCode(resp.ErrorCode), resp.Topics)
		}
		want := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		want.Topic, want.ErrorCode, want.ErrorMessage = "d", denied, msg(kafkaMsg)
		same("DeleteShareGroupOffsets d", &resp.Topics[0], &want)
		req.GroupID = "nog"
		resp = sendAs(t, b, "bob", req).(*kmsg.DeleteShareGroupOffsetsResponse)
		if resp.ErrorCode != kerr.GroupAuthorizationFailed.Code || resp.ErrorMessage == nil || *resp.ErrorMessage != "Group authorization failed." || len(resp.Topics) != 0 {
			t.Errorf("group denied: %+v", resp)
		}
	})

	// A group error of the handler's is answered alone, without the
	// denied topics (KafkaApis sends getErrorResponse then).
	t.Run("ShareGroupOffsetsOfANonEmptyGroup", func(t *testing.T) {
		shareHeartbeat(0)
		alter := kmsg.NewPtrAlterShareGroupOffsetsRequest()
		alter.GroupID = "sg"
		alter.Topics = []kmsg.AlterShareGroupOffsetsRequestTopic{{Topic: "d", Partitions: []kmsg.AlterShareGroupOffsetsRequestTopicPartition{{Partition: 0}}}}
		if r := sendAs(t, b, "bob", alter).(*kmsg.AlterShareGroupOffsetsResponse); r.ErrorCode != kerr.NonEmptyGroup.Code || len(r.Topics) != 0 {
			t.Errorf("AlterShareGroupOffsets: %v, topics %+v", kerr.ErrorForCode(r.ErrorCode), r.Topics)
		}
		del := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
		del.GroupID = "sg"
		del.Topics = []kmsg.DeleteShareGroupOffsetsRequestTopic{{Topic: "d"}}
		if r := sendAs(t, b, "bob", del).(*kmsg.DeleteShareGroupOffsetsResponse); r.ErrorCode != kerr.NonEmptyGroup.Code || len(r.Topics) != 0 {
			t.Errorf("DeleteShareGroupOffsets: %v, topics %+v", kerr.ErrorForCode(r.ErrorCode), r.Topics)
		}
	})
}

// nilEmpty makes the empty slices under v nil: a decoded empty array is
// an empty slice, a built answer's a nil one.
func nilEmpty(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			nilEmpty(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				nilEmpty(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 && !v.IsNil() && v.CanSet() {
			v.Set(reflect.Zero(v.Type()))
		}
		for i := range v.Len() {
			nilEmpty(v.Index(i))
		}
	}
}
