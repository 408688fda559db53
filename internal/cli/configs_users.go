package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkit/kafkit/admin"
)

// Users' SCRAM credentials through kafka-configs' --entity-type users, as
// Kafka's ConfigCommand: --add-config 'SCRAM-SHA-256=[iterations=4096,password=pw]'
// and --delete-config SCRAM-SHA-256.

func isUsersEntity(entityType string) bool { return entityType == "users" || entityType == "user" }

func isSCRAMKey(k string) bool { return k == "SCRAM-SHA-256" || k == "SCRAM-SHA-512" }

// describeUserConfigs prints a user's SCRAM credentials as ConfigCommand
// does.
func (g *globals) describeUserConfigs(cmd *cobra.Command, user string) error {
	return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
		var users []string
		if user != "" {
			users = []string{user}
		}
		creds, err := adm.DescribeUserSCRAMCredentials(ctx, users...)
		if errors.Is(err, kerr.ResourceNotFound) {
			// ConfigCommand prints only the users that have
			// credentials (after their quotas).
			return nil
		}
		if err != nil {
			return err
		}
		if g.output == "json" {
			return printJSON(g.io.Out, creds)
		}
		names := make([]string, 0, len(creds))
		for u := range creds {
			names = append(names, u)
		}
		slices.Sort(names)
		for _, u := range names {
			var parts []string
			for _, c := range creds[u] {
				parts = append(parts, fmt.Sprintf("%s=iterations=%d", c.Mechanism, c.Iterations))
			}
			fmt.Fprintf(g.io.Out, "SCRAM credential configs for user-principal '%s' are %s\n", u, strings.Join(parts, ", "))
		}
		return nil
	})
}

// alterUserConfigs upserts and deletes a user's SCRAM credentials.
func (g *globals) alterUserConfigs(cmd *cobra.Command, user string, set map[string]string, deletes []string) error {
	if user == "" {
		return fmt.Errorf("--entity-name is required for --entity-type users")
	}
	var ups []admin.SCRAMUpsertion
	var dels []admin.SCRAMDeletion
	for _, k := range sortedKeys(set) {
		if !isSCRAMKey(k) {
			return fmt.Errorf("--add-config: %s is not a user config kafkit sets (SCRAM-SHA-256, SCRAM-SHA-512)", k)
		}
		up, err := scramUpsertion(user, k, set[k])
		if err != nil {
			return err
		}
		ups = append(ups, up)
	}
	for _, d := range deletes {
		for k := range strings.SplitSeq(d, ",") {
			if k = strings.TrimSpace(k); k == "" {
				continue
			}
			if !isSCRAMKey(k) {
				return fmt.Errorf("--delete-config: %s is not a user config kafkit sets (SCRAM-SHA-256, SCRAM-SHA-512)", k)
			}
			dels = append(dels, admin.SCRAMDeletion{User: user, Mechanism: k})
		}
	}
	if len(ups)+len(dels) == 0 {
		return fmt.Errorf("give --add-config or --delete-config")
	}
	return g.withAdmin(cmd, func(ctx context.Context, adm *admin.Client) error {
		// One request per credential: a broker refuses a user altered twice
		// in one request (DUPLICATE_RESOURCE).
		for _, u := range ups {
			if err := adm.AlterUserSCRAMCredentials(ctx, []admin.SCRAMUpsertion{u}, nil); err != nil {
				return err
			}
		}
		for _, d := range dels {
			if err := adm.AlterUserSCRAMCredentials(ctx, nil, []admin.SCRAMDeletion{d}); err != nil {
				return err
			}
		}
		_, err := fmt.Fprintf(g.io.Out, "Completed updating config for user %s.\n", user)
		return err
	})
}

// scramUpsertion parses a SCRAM value: iterations=N,password=PW (the
// brackets are already gone); iterations default to 4096.
func scramUpsertion(user, mechanism, v string) (admin.SCRAMUpsertion, error) {
	up := admin.SCRAMUpsertion{User: user, Mechanism: mechanism}
	havePassword := false
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(kv, "=")
		switch strings.TrimSpace(k) {
		case "password":
			up.Password, havePassword = val, ok
		case "iterations":
			n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 32)
			if err != nil {
				return up, fmt.Errorf("--add-config %s: iterations must be an integer, got %q", mechanism, val)
			}
			up.Iterations = int32(n)
		default:
			return up, fmt.Errorf("--add-config %s: want [iterations=N,]password=PW, got %q", mechanism, kv)
		}
	}
	if !havePassword {
		return up, fmt.Errorf("--add-config %s: password is required: %s=[iterations=4096,password=...]", mechanism, mechanism)
	}
	return up, nil
}

// splitSCRAM separates the SCRAM credential keys of an alter from the
// quota keys.
func splitSCRAM(set map[string]string, deletes []string) (scramSet, quotaSet map[string]string, scramDel, quotaDel []string) {
	scramSet, quotaSet = map[string]string{}, map[string]string{}
	for k, v := range set {
		if isSCRAMKey(k) {
			scramSet[k] = v
		} else {
			quotaSet[k] = v
		}
	}
	for _, k := range deletes {
		if isSCRAMKey(k) {
			scramDel = append(scramDel, k)
		} else {
			quotaDel = append(quotaDel, k)
		}
	}
	return scramSet, quotaSet, scramDel, quotaDel
}
