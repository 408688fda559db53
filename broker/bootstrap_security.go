package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/kafkit/kafkit/internal/auth"
	"github.com/kafkit/kafkit/internal/metadata"
	"github.com/kafkit/kafkit/internal/storage"
)

// bootstrapFile holds the records a cluster starts with, in the metadata
// log's directory, as kafka-storage.sh format --add-scram writes Kafka's
// bootstrap.checkpoint: one batch of metadata records (our encoding).
const bootstrapFile = "__cluster_metadata-0/bootstrap.checkpoint"

// BootstrapSCRAM is a SCRAM credential a cluster starts with
// (kafka-storage.sh format --add-scram): a password, or a salted password
// with its salt.
type BootstrapSCRAM struct {
	Mechanism      string // SCRAM-SHA-256 or SCRAM-SHA-512
	User           string
	Password       string
	Salt           []byte // random when empty
	SaltedPassword []byte // instead of Password
	Iterations     int32  // 4096 when 0
}

// WriteBootstrap writes users and the finalized feature levels (nil: the
// latest release's) into cfg's log directory for the cluster's start, as
// kafka-storage.sh format --add-scram, --release-version and --feature
// do: the first decision of the first active controller writes them into
// the metadata log, and a single node takes them while it has no
// credentials (scram-credentials.json) or levels (finalized-features.json)
// of its own.
func WriteBootstrap(cfg Config, users []BootstrapSCRAM, features map[string]int16) error {
	var recs []metadata.Record
	if features != nil {
		if _, ok := features[metadata.MetadataVersionFeature]; !ok {
			return errors.New("bootstrap features without metadata.version")
		}
		recs = metadata.FeatureRecords(features)
	}
	for _, u := range users {
		code, ok := auth.SCRAMMechanismCode(u.Mechanism)
		switch {
		case !ok:
			return fmt.Errorf("--add-scram: unknown mechanism %q (want SCRAM-SHA-256 or SCRAM-SHA-512)", u.Mechanism)
		case u.User == "":
			return fmt.Errorf("--add-scram %s: name is required", u.Mechanism)
		case u.Iterations == 0:
			u.Iterations = auth.MinSCRAMIterations
		}
		if u.Iterations < auth.MinSCRAMIterations || u.Iterations > auth.MaxSCRAMIterations {
			return fmt.Errorf("--add-scram %s: iterations must be between %d and %d, got %d", u.Mechanism, auth.MinSCRAMIterations, auth.MaxSCRAMIterations, u.Iterations)
		}
		if len(u.Salt) == 0 {
			if u.SaltedPassword != nil {
				return fmt.Errorf("--add-scram %s: a saltedpassword needs its salt", u.Mechanism)
			}
			u.Salt = make([]byte, 16)
			rand.Read(u.Salt)
		}
		var cred auth.SCRAMCredential
		if u.SaltedPassword != nil {
			cred = auth.SaltedSCRAMCredential(u.Mechanism, u.Salt, u.SaltedPassword, u.Iterations)
		} else {
			var err error
			if cred, err = auth.NewSCRAMCredential(u.Mechanism, u.Password, u.Salt, u.Iterations); err != nil {
				return fmt.Errorf("--add-scram %s: %w", u.Mechanism, err)
			}
		}
		recs = append(recs, &metadata.UserSCRAMCredential{Name: u.User, Mechanism: code, Salt: cred.Salt, StoredKey: cred.StoredKey, ServerKey: cred.ServerKey, Iterations: cred.Iterations})
	}
	path := filepath.Join(cfg.DataDir, bootstrapFile)
	fsys := storage.OSFS{}
	if err := fsys.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(fsys, path, metadata.EncodeBatch(recs...))
}

// bootstrapRecords are the records of the log directory's bootstrap file
// and of the test options' SCRAM users.
func (b *Broker) bootstrapRecords() ([]metadata.Record, error) {
	var recs []metadata.Record
	path := b.cfg.DataDir + "/" + bootstrapFile
	data, err := readFile(b.fs, path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", path, err)
	default:
		if recs, err = metadata.DecodeBatch(data); err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	if !slices.ContainsFunc(recs, func(r metadata.Record) bool {
		fl, ok := r.(*metadata.FeatureLevel)
		return ok && fl.Name == metadata.MetadataVersionFeature
	}) {
		// Formatted without --release-version: the latest release's
		// levels, under any --feature given.
		recs = append(metadata.DefaultFeatureRecords(metadata.LatestMetadataVersion), recs...)
	}
	for _, u := range b.cfg.scramUsers {
		code, _ := auth.SCRAMMechanismCode(u.mechanism)
		recs = append(recs, &metadata.UserSCRAMCredential{Name: u.user, Mechanism: code, Salt: u.cred.Salt,
			StoredKey: u.cred.StoredKey, ServerKey: u.cred.ServerKey, Iterations: u.cred.Iterations})
	}
	return recs, nil
}

// bootstrapLog writes the bootstrap records into an empty log at once,
// without waiting for a first decision: a node logs in to the controller
// listener with a SCRAM user that only they create.
func (c *cluster) bootstrapLog() {
	empty := false
	c.q.View(func(img *metadata.Image) { empty = img.Offset == 0 })
	if !empty {
		return
	}
	ctx, cancel := context.WithTimeout(c.b.ctx, localWait)
	defer cancel()
	if _, err := c.decide(ctx, func(*metadata.Image) ([]metadata.Record, error) { return nil, nil }); err != nil {
		c.b.log.Warn("writing the bootstrap records", "err", err)
	}
}
