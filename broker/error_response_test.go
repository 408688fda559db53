package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestErrorResponse(t *testing.T) {
	code := kerr.IllegalSaslState.Code

	produce := kmsg.NewPtrProduceRequest()
	produce.SetVersion(9)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "a"
	rt.Partitions = []kmsg.ProduceRequestTopicPartition{{Partition: 3, Records: []byte{1}}, {Partition: 5}}
	produce.Topics = append(produce.Topics, rt)
	pr := errorResponse(produce, kerr.IllegalSaslState, "").(*kmsg.ProduceResponse)
	if pr.GetVersion() != 9 || len(pr.Brokers) != 0 || len(pr.Topics) != 1 || pr.Topics[0].Topic != "a" || len(pr.Topics[0].Partitions) != 2 {
		t.Fatalf("produce: %+v", pr)
	}
	for i, p := range pr.Topics[0].Partitions {
		if p.Partition != rt.Partitions[i].Partition || p.ErrorCode != code {
			t.Errorf("produce partition %d: %+v", i, p)
		}
	}

	meta := kmsg.NewPtrMetadataRequest()
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t"), TopicID: [16]byte{1}}}
	mr := errorResponse(meta, kerr.IllegalSaslState, "").(*kmsg.MetadataResponse)
	if len(mr.Topics) != 1 || *mr.Topics[0].Topic != "t" || mr.Topics[0].TopicID != [16]byte{1} || mr.Topics[0].ErrorCode != code {
		t.Errorf("metadata: %+v", mr.Topics)
	}

	// A response with a top-level error code takes it alone.
	reg := kmsg.NewPtrCreateACLsRequest()
	reg.Creations = make([]kmsg.CreateACLsRequestCreation, 2)
	cr := errorResponse(reg, kerr.ClusterAuthorizationFailed, "").(*kmsg.CreateACLsResponse)
	if len(cr.Results) != 2 || cr.Results[1].ErrorCode != kerr.ClusterAuthorizationFailed.Code || cr.Results[1].ErrorMessage == nil {
		t.Errorf("create acls: %+v", cr.Results)
	}
	av := errorResponse(kmsg.NewPtrApiVersionsRequest(), kerr.IllegalSaslState, "").(*kmsg.ApiVersionsResponse)
	if av.ErrorCode != code || len(av.ApiKeys) != 0 {
		t.Errorf("api versions: %+v", av)
	}
	hb := errorResponse(kmsg.NewPtrBrokerHeartbeatRequest(), kerr.ClusterAuthorizationFailed, "").(*kmsg.BrokerHeartbeatResponse)
	if hb.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("broker heartbeat: %+v", hb)
	}
	// Partition-id lists get one entry per partition.
	wm := kmsg.NewPtrWriteTxnMarkersRequest()
	wm.Markers = []kmsg.WriteTxnMarkersRequestMarker{{ProducerID: 7, Topics: []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: "t", Partitions: []int32{2, 4}}}}}
	wr := errorResponse(wm, kerr.ClusterAuthorizationFailed, "").(*kmsg.WriteTxnMarkersResponse)
	if len(wr.Markers) != 1 || wr.Markers[0].ProducerID != 7 || len(wr.Markers[0].Topics) != 1 || wr.Markers[0].Topics[0].Topic != "t" ||
		len(wr.Markers[0].Topics[0].Partitions) != 2 {
		t.Fatalf("write txn markers: %+v", wr.Markers)
	}
	for i, p := range wr.Markers[0].Topics[0].Partitions {
		if p.Partition != []int32{2, 4}[i] || p.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
			t.Errorf("write txn markers partition %d: %+v", i, p)
		}
	}

	// Kafka's sentinels, not the schema's defaults nor the request's
	// fields of the same name.
	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(12)
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.LogStartOffset = 7
	fetch.Topics = []kmsg.FetchRequestTopic{{Topic: "f", Partitions: []kmsg.FetchRequestTopicPartition{fp}}}
	fr := errorResponse(fetch, kerr.NotLeaderForPartition, "").(*kmsg.FetchResponse)
	if p := fr.Topics[0].Partitions[0]; p.HighWatermark != -1 || p.LogStartOffset != -1 || p.LastStableOffset != -1 {
		t.Errorf("fetch partition: %+v", p)
	}
	fetch.SetVersion(13) // the top-level error alone
	if fr := errorResponse(fetch, kerr.NotLeaderForPartition, "").(*kmsg.FetchResponse); fr.ErrorCode != kerr.NotLeaderForPartition.Code || len(fr.Topics) != 0 {
		t.Errorf("fetch v13: %+v", fr)
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.SetVersion(7)
	lo.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "l", Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 1, Timestamp: -2}}}}
	if p := errorResponse(lo, kerr.NotLeaderForPartition, "").(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]; p.Partition != 1 || p.Timestamp != -1 || p.Offset != -1 {
		t.Errorf("list offsets partition: %+v", p)
	}
	if p := pr.Topics[0].Partitions[0]; p.BaseOffset != -1 || p.LogAppendTime != -1 || p.LogStartOffset != -1 || p.ErrorMessage == nil || *p.ErrorMessage != kerr.IllegalSaslState.Description {
		t.Errorf("produce partition: %+v", p)
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.SetVersion(8)
	of.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "o", Partitions: []int32{0}}}}}
	if or := errorResponse(of, kerr.GroupAuthorizationFailed, "").(*kmsg.OffsetFetchResponse); len(or.Groups) != 1 || or.Groups[0].Group != "g" ||
		or.Groups[0].ErrorCode != kerr.GroupAuthorizationFailed.Code || len(or.Groups[0].Topics) != 0 {
		t.Errorf("offset fetch v8: %+v", or.Groups)
	}
	// Kafka's own message where kerr's description is the Java client's.
	tp := topicsDenied[*kmsg.ProduceResponse](produce, nil).Topics[0].Partitions[0]
	if tp.ErrorCode != kerr.TopicAuthorizationFailed.Code || tp.ErrorMessage != nil {
		t.Errorf("produce partition denied: %+v", tp)
	}
	if m := errorResponse(kmsg.NewPtrDeleteShareGroupOffsetsRequest(), kerr.GroupAuthorizationFailed, "").(*kmsg.DeleteShareGroupOffsetsResponse).ErrorMessage; m == nil || *m != "Group authorization failed." {
		t.Errorf("group authorization message %v", m)
	}

	// Every response of every API encodes.
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		req := kmsg.RequestForKey(k)
		if req == nil {
			continue
		}
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			errorResponse(req, kerr.IllegalSaslState, "").AppendTo(nil)
		}
	}
}
