package broker

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sendVersioned sends req at the version it carries, on a fresh connection
// (clients negotiate versions; these tests pin them), and decodes the answer.
func sendVersioned(t *testing.T, b *Broker, req kmsg.Request) kmsg.Response {
	t.Helper()
	return sendAs(t, b, "group-test", req)
}

// sendAs is sendVersioned with the client id clientID.
func sendAs(t *testing.T, b *Broker, clientID string, req kmsg.Request) kmsg.Response {
	t.Helper()
	nc, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))
	if _, err := nc.Write(f.AppendRequest(nil, req, 7)); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatalf("%s v%d: reading response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(nc, body); err != nil {
		t.Fatal(err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != 7 {
		t.Fatalf("correlation id %d", corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) { // ApiVersions' response header is v0 at every version
		body = body[1:] // empty header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decoding %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

func TestFindCoordinator(t *testing.T) {
	b := NewTest(t, WithConfig(func(c *Config) { c.OffsetsTopicNumPartitions = 5 }))
	tests := []struct {
		version int16
		typ     int8
		keys    []string
		want    *kerr.Error
	}{
		{0, 0, []string{"g"}, nil},
		{1, 1, []string{"txn"}, nil},
		{3, 0, []string{"g"}, nil},
		{3, 7, []string{"g"}, kerr.InvalidRequest},
		{4, 0, []string{"a", "b"}, nil},
		{5, 1, []string{"t1", "t2", "t3"}, nil},
		{5, 2, []string{"share"}, kerr.InvalidRequest},
		// v6: share coordinator keys, groupId:topicId:partition.
		{6, 2, []string{"g:AAAAAAAAAAAAAAAAAAAAAQ:0", "a:b:AAAAAAAAAAAAAAAAAAAAAQ:7"}, nil},
		{6, 2, []string{"share"}, kerr.InvalidRequest},
		{6, 2, []string{"g:notanid:0"}, kerr.InvalidRequest},
		{6, 2, []string{"g:AAAAAAAAAAAAAAAAAAAAAQ:-1"}, kerr.InvalidRequest},
		{6, 2, []string{":AAAAAAAAAAAAAAAAAAAAAQ:0"}, kerr.InvalidRequest},
		{5, 2, []string{"g:AAAAAAAAAAAAAAAAAAAAAQ:0"}, kerr.InvalidRequest},
	}
	for _, tt := range tests {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version, req.CoordinatorType = tt.version, tt.typ
		if tt.version < 4 {
			req.CoordinatorKey = tt.keys[0]
		} else {
			req.CoordinatorKeys = tt.keys
		}
		resp := sendVersioned(t, b, req).(*kmsg.FindCoordinatorResponse)
		got := resp.Coordinators
		if tt.version < 4 {
			got = []kmsg.FindCoordinatorResponseCoordinator{{Key: tt.keys[0], NodeID: resp.NodeID, Host: resp.Host, Port: resp.Port, ErrorCode: resp.ErrorCode}}
		}
		if len(got) != len(tt.keys) {
			t.Fatalf("v%d: %d coordinators for %d keys", tt.version, len(got), len(tt.keys))
		}
		for i, c := range got {
			if tt.want != nil {
				if c.ErrorCode != tt.want.Code || c.NodeID != -1 {
					t.Errorf("v%d type %d: error %v node %d, want %v", tt.version, tt.typ, kerr.ErrorForCode(c.ErrorCode), c.NodeID, tt.want)
				}
				continue
			}
			if c.ErrorCode != 0 || c.Key != tt.keys[i] || c.NodeID != b.nodeID || c.Host != b.advHost || c.Port != b.advPort {
				t.Errorf("v%d type %d key %q: %+v", tt.version, tt.typ, tt.keys[i], c)
			}
		}
	}
	// The group lookup created the internal topic.
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	topic := offsetsTopic
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	mresp := sendVersioned(t, b, md).(*kmsg.MetadataResponse)
	if mt := mresp.Topics[0]; mt.ErrorCode != 0 || !mt.IsInternal || len(mt.Partitions) != 5 {
		t.Fatalf("%s in Metadata: error %d internal %v partitions %d", offsetsTopic, mt.ErrorCode, mt.IsInternal, len(mt.Partitions))
	}
}

// TestGroupAPIsEveryVersion sends every group API at every version it
// claims and decodes the answer at that version.
func TestGroupAPIsEveryVersion(t *testing.T) {
	b := NewTest(t)
	keys := []kmsg.Key{kmsg.OffsetCommit, kmsg.OffsetFetch, kmsg.FindCoordinator, kmsg.JoinGroup, kmsg.Heartbeat,
		kmsg.LeaveGroup, kmsg.SyncGroup, kmsg.DescribeGroups, kmsg.ListGroups, kmsg.DeleteGroups, kmsg.OffsetDelete}
	for _, key := range keys {
		h := b.handlers.lookup(int16(key))
		if h == nil {
			t.Fatalf("%s is not served", kmsg.NameForKey(int16(key)))
		}
		for v := h.min; v <= h.max; v++ {
			req := kmsg.RequestForKey(int16(key))
			req.SetVersion(v)
			switch r := req.(type) {
			case *kmsg.OffsetCommitRequest:
				r.Group = "every"
				r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "none", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0}}}}
			case *kmsg.OffsetFetchRequest:
				r.Group = "every"
				r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "every"}}
			case *kmsg.FindCoordinatorRequest:
				r.CoordinatorKey, r.CoordinatorKeys = "every", []string{"every"}
			case *kmsg.JoinGroupRequest:
				r.Group, r.SessionTimeoutMillis = "every", 10_000
			case *kmsg.HeartbeatRequest:
				r.Group = "every"
			case *kmsg.LeaveGroupRequest:
				r.Group, r.MemberID = "every", "m"
				r.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
			case *kmsg.SyncGroupRequest:
				r.Group = "every"
			case *kmsg.DescribeGroupsRequest:
				r.Groups = []string{"every"}
			case *kmsg.DeleteGroupsRequest:
				r.Groups = []string{"every"}
			case *kmsg.OffsetDeleteRequest:
				r.Group = "every"
			}
			resp := sendVersioned(t, b, req)
			if resp.GetVersion() != v {
				t.Errorf("%s v%d answered at v%d", kmsg.NameForKey(int16(key)), v, resp.GetVersion())
			}
		}
	}
}
