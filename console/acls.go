package console

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/kafkit/kafkit/admin"
	"github.com/twmb/franz-go/pkg/kerr"
)

// aclList shows the cluster's ACLs, by resource, or says that the cluster
// has no authorizer (SECURITY_DISABLED), as Kafka answers without one.
func (c *Console) aclList(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	acls, err := c.admin.DescribeACLs(ctx, admin.ACLFilter{})
	disabled := errors.Is(err, kerr.SecurityDisabled)
	if err != nil && !disabled {
		return err
	}
	slices.SortFunc(acls, func(a, b admin.ACL) int {
		return cmp.Or(strings.Compare(a.Pattern(), b.Pattern()), strings.Compare(a.Entry(), b.Entry()))
	})
	return c.render(w, r, http.StatusOK, "acls", "ACLs", struct {
		Disabled bool
		ACLs     []admin.ACL
	}{disabled, acls})
}
