package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/auth"
	"github.com/kafkit/kafkit/internal/metadata"
	"github.com/kafkit/kafkit/internal/storage"
)

// scramFile holds the SCRAM credentials of a single node (salt, StoredKey,
// ServerKey and iterations per user and mechanism; never a password), as
// Kafka keeps them in its metadata log.
const scramFile = "scram-credentials.json"

func openSCRAMStore(fsys storage.FS, dir string) (*auth.SCRAMStore, error) {
	s := auth.NewSCRAMStore()
	path := dir + "/" + scramFile
	data, err := readFile(fsys, path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// No credentials of its own yet: the ones kafka-storage.sh
		// format --add-scram wrote, if any.
		boot, err := readFile(fsys, dir+"/"+bootstrapFile)
		if errors.Is(err, os.ErrNotExist) {
			return s, nil
		}
		img := metadata.NewImage()
		if err == nil {
			var recs []metadata.Record
			if recs, err = metadata.DecodeBatch(boot); err == nil {
				err = img.Apply(1, recs)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", dir+"/"+bootstrapFile, err)
		}
		return s, s.Replace(scramOf(img))
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var creds map[string]map[string]auth.SCRAMCredential
	if err := json.Unmarshal(data, &creds); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if err := s.Replace(creds); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return s, nil
}

// DescribeUserScramCredentials: v0 (flexible).
var describeUserSCRAMCredentialsVersions = versions{0, 0}

func (b *Broker) handleDescribeUserSCRAMCredentials(rc *reqCtx, req *kmsg.DescribeUserSCRAMCredentialsRequest) (kmsg.Response, error) {
	if !b.allowedCluster(rc, kmsg.ACLOperationDescribe) {
		// Kafka's getErrorResponse: the top-level error alone.
		resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
		resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
		return resp, nil
	}
	return b.scram.Describe(req), nil
}

// AlterUserScramCredentials: v0 (flexible). Changes are durable before the
// answer; if they cannot be written they are undone and every user the
// request changed gets the storage error.
var alterUserSCRAMCredentialsVersions = versions{0, 0}

func (b *Broker) handleAlterUserSCRAMCredentials(rc *reqCtx, req *kmsg.AlterUserSCRAMCredentialsRequest) (kmsg.Response, error) {
	if !b.allowedCluster(rc, kmsg.ACLOperationAlter) {
		return scramFailed(req, kerr.ClusterAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Description), nil
	}
	if b.cluster != nil {
		return b.cluster.alterSCRAM(req), nil
	}
	b.scramMu.Lock()
	defer b.scramMu.Unlock()
	before := b.scram.Credentials()
	resp := b.scram.Alter(req)
	data, err := json.MarshalIndent(b.scram.Credentials(), "", "  ")
	if err == nil {
		err = writeFileAtomic(b.fs, b.cfg.DataDir+"/"+scramFile, data)
	}
	if err != nil {
		b.log.Error("persisting SCRAM credentials", "err", err)
		if rerr := b.scram.Replace(before); rerr != nil {
			return nil, rerr
		}
		for i := range resp.Results {
			if r := &resp.Results[i]; r.ErrorCode == 0 {
				r.ErrorCode, r.ErrorMessage = kerr.KafkaStorageError.Code, kmsg.StringPtr(err.Error())
			}
		}
	}
	return resp, nil
}

// scramFailed answers every user of an AlterUserScramCredentials request,
// once each, with code.
func scramFailed(req *kmsg.AlterUserSCRAMCredentialsRequest, code int16, msg string) *kmsg.AlterUserSCRAMCredentialsResponse {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	seen := map[string]bool{}
	user := func(name string) {
		if !seen[name] {
			seen[name] = true
			r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			r.User, r.ErrorCode, r.ErrorMessage = name, code, kmsg.StringPtr(msg)
			resp.Results = append(resp.Results, r)
		}
	}
	for _, d := range req.Deletions {
		user(d.Name)
	}
	for _, u := range req.Upsertions {
		user(u.Name)
	}
	return resp
}
