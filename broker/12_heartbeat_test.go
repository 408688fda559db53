package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func heartbeatV(t *testing.T, b *Broker, v int16, group, member string, gen int32) int16 {
	t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = v
	req.Group, req.MemberID, req.Generation = group, member, gen
	return sendVersioned(t, b, req).(*kmsg.HeartbeatResponse).ErrorCode
}

func TestHeartbeatUnknownGroup(t *testing.T) {
	b := NewTest(t)
	for v := int16(0); v <= heartbeatVersions.max; v++ {
		if code := heartbeatV(t, b, v, "nobody", "m", 1); code != kerr.UnknownMemberID.Code {
			t.Errorf("v%d: %v, want UNKNOWN_MEMBER_ID", v, kerr.ErrorForCode(code))
		}
	}
}
