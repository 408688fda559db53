package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestListGroups(t *testing.T) {
	b := NewTest(t)
	createTestTopic(t, b, "lg", 1)
	sendVersioned(t, b, joinV(3, "lg-live", ""))
	commitV(t, b, 2, "lg-simple", "lg", 1, 0)
	tests := []struct {
		version int16
		states  []string
		want    []string
	}{
		{0, nil, []string{"lg-live", "lg-simple"}},
		{4, []string{"Empty"}, []string{"lg-simple"}},
		{4, []string{"CompletingRebalance"}, []string{"lg-live"}},
		{5, []string{"Stable"}, nil},
	}
	for _, tt := range tests {
		req := kmsg.NewPtrListGroupsRequest()
		req.Version, req.StatesFilter = tt.version, tt.states
		resp := sendVersioned(t, b, req).(*kmsg.ListGroupsResponse)
		var got []string
		for _, g := range resp.Groups {
			got = append(got, g.Group)
			if tt.version >= 5 && g.GroupType != "classic" {
				t.Errorf("group type %q", g.GroupType)
			}
		}
		if len(got) != len(tt.want) || (len(got) > 0 && (got[0] != tt.want[0] || got[len(got)-1] != tt.want[len(tt.want)-1])) {
			t.Errorf("v%d states %v: %v, want %v", tt.version, tt.states, got, tt.want)
		}
	}
}
