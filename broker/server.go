package broker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kafkit/kafkit/internal/auth"
	"github.com/kafkit/kafkit/internal/share"
	"github.com/kafkit/kafkit/internal/storage"
)

// Broker is a single-node, Kafka-wire-compatible broker. Create it with New
// (or NewTest in tests); it serves until Close.
type Broker struct {
	cfg       Config
	log       *slog.Logger
	fs        storage.FS
	dirLock   *os.File         // the data directory's .lock, held until Close
	listeners []*boundListener // every served listener; the first is Addr's
	nodeID    int32
	advHost   string // the first listener's advertised endpoint
	advPort   int32
	clusterID string
	handlers  *handlerTable

	// ctx is canceled by Close: connections stop reading, long polls return.
	ctx    context.Context
	cancel context.CancelFunc

	// goroutines tracks every long-lived goroutine; startMu guards closed so
	// nothing starts after Close began.
	goroutines sync.WaitGroup
	startMu    sync.Mutex
	closed     bool
	closeOnce  sync.Once
	closeErr   error

	// connsMu guards conns, the open client connections (closed on shutdown).
	connsMu sync.Mutex
	conns   map[net.Conn]struct{}

	topics        *topicRegistry
	pids          *producerIDs
	dynamic       *dynamicConfigs
	acls          *acls
	quotas        *clientQuotas
	features      *featureState // features.go
	fetchSessions *fetchSessionCache

	coord coordinatorHooks
	// share holds the share groups (KIP-932); groupConfigs the GROUP
	// config resources they read. On a cluster share holds the
	// share-partitions this node leads and shareCoord the groups it
	// coordinates (share_cluster.go); on a single node they are one.
	share        *share.Manager
	shareCoord   *share.Manager
	shareLoads   shareLoads
	groupConfigs *groupConfigs

	// scram holds the SCRAM credentials, persisted in <log.dirs>/scram-credentials.json.
	scram *auth.SCRAMStore
	// scramMu serializes AlterUserScramCredentials so that each change is
	// on disk before the next one starts.
	scramMu sync.Mutex

	metrics *brokerMetrics

	// cluster is this node's part in a cluster; nil for a single node.
	cluster *cluster
	// crash makes Close a crash (NewTestCluster's Kill): no controlled
	// shutdown, and the logs are abandoned as kill -9 leaves them (written
	// but neither flushed nor closed, no clean-shutdown marker), so the
	// next start recovers them.
	crash bool
}

// New validates cfg, opens (and recovers) the data directory and starts
// listening. Serving begins at once on a background goroutine; use Addr for
// the bound address and Close to stop.
func New(cfg Config) (_ *Broker, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("broker config: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b := &Broker{
		cfg:    cfg,
		log:    logger.With("broker", cfg.BrokerID),
		nodeID: int32(cfg.BrokerID),
		conns:  make(map[net.Conn]struct{}),

		fetchSessions: newFetchSessionCache(int(cfg.FetchSessionCacheSlots)),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if cfg.InMemory {
		b.fs = storage.NewMemFS()
		b.cfg.DataDir = "/kafkit-memory"
	} else {
		if b.dirLock, err = lockDataDir(b.cfg.DataDir, b.log); err != nil {
			return nil, fmt.Errorf("log.dirs: %w", err)
		}
		defer func() {
			if err != nil {
				b.dirLock.Close()
			}
		}()
		b.fs = storage.NewFileCache(storage.OSFS{}, int(cfg.LogMaxOpenFiles))
	}
	if cfg.wrapFS != nil {
		b.fs = cfg.wrapFS(b.fs)
	}
	meta, err := loadMetaProperties(b.fs, b.cfg.DataDir, cfg.ClusterID, b.nodeID, cfg.freshClusterID)
	if err != nil {
		return nil, err
	}
	b.clusterID = meta.clusterID
	if b.pids, err = openProducerIDs(b.fs, b.cfg.DataDir); err != nil {
		return nil, err
	}
	if b.dynamic, err = openDynamicConfigs(b); err != nil {
		return nil, err
	}
	if b.acls, err = openACLs(b); err != nil {
		return nil, err
	}
	if b.quotas, err = openQuotas(b); err != nil {
		return nil, err
	}
	if b.features, err = openFeatures(b); err != nil {
		return nil, err
	}
	if b.topics, err = openTopicRegistry(b); err != nil {
		return nil, err
	}
	if b.scram, err = openSCRAMStore(b.fs, b.cfg.DataDir); err != nil {
		b.topics.close()
		return nil, err
	}
	for _, u := range cfg.scramUsers {
		if err := b.scram.Set(u.user, u.mechanism, u.cred); err != nil {
			b.topics.close()
			return nil, err
		}
	}
	ls, _ := cfg.resolvedListeners() // checked by Validate
	if err := b.bindListeners(ls); err != nil {
		b.topics.close()
		return nil, err
	}
	b.handlers = b.newHandlers()
	b.metrics = newBrokerMetrics(b)
	if err := b.startCoordinators(); err != nil {
		b.closeListeners()
		b.topics.close()
		return nil, err
	}
	if err := b.startShareGroups(); err != nil {
		b.cancel()
		b.closeListeners()
		b.goroutines.Wait()
		b.topics.close()
		return nil, err
	}
	if cfg.clusterMode() {
		if err := b.startCluster(); err != nil {
			b.closeListeners()
			b.topics.close()
			return nil, err
		}
	}
	for _, l := range b.listeners {
		b.goStart(func() { b.acceptLoop(l.ln, l) })
	}
	b.goStart(b.maintenanceLoop)
	if b.cfg.CleanerEnable {
		b.goStart(b.cleanerLoop)
	}
	b.log.Info("broker started", "listeners", b.listenerDescription(), "data_dir", b.dataDirDescription(), "cluster_id", b.clusterID)
	return b, nil
}

func (b *Broker) dataDirDescription() string {
	if b.cfg.InMemory {
		return "(in memory)"
	}
	return b.cfg.DataDir
}

// conf is the effective configuration: server.properties plus the dynamic
// broker configs set through AlterConfigs. cfg stays the static part.
func (b *Broker) conf() *Config { return b.dynamic.effective.Load() }

// brokerName is this broker's config resource name (its id).
func (b *Broker) brokerName() string { return strconv.Itoa(int(b.nodeID)) }

// Addr is the address of the broker's first listener (see ListenerAddr);
// a controller-only node's is its controller endpoint.
func (b *Broker) Addr() string {
	if len(b.listeners) == 0 {
		return b.cluster.mux.Raft().Addr().String()
	}
	return b.listeners[0].ln.Addr().String()
}

func (b *Broker) listenerDescription() string {
	var parts []string
	for _, l := range b.listeners {
		parts = append(parts, l.Name+"://"+l.ln.Addr().String())
	}
	if len(parts) == 0 && b.cluster != nil { // a controller-only node
		parts = append(parts, b.cfg.controllerNames()[0]+"://"+b.Addr())
	}
	return strings.Join(parts, ",")
}

// DataDir is the directory holding the logs ("(in memory)" in memory mode).
func (b *Broker) DataDir() string { return b.dataDirDescription() }

// ClusterID is the id reported in Metadata and DescribeCluster.
func (b *Broker) ClusterID() string { return b.clusterID }

// goStart runs fn on a tracked goroutine unless the broker is closing.
func (b *Broker) goStart(fn func()) bool {
	b.startMu.Lock()
	defer b.startMu.Unlock()
	if b.closed {
		return false
	}
	b.goroutines.Add(1)
	go func() {
		defer b.goroutines.Done()
		fn()
	}()
	return true
}

// acceptLoop serves ln's connections as listener l's (ln is l's socket,
// or on a cluster node the Kafka side of the CONTROLLER port).
func (b *Broker) acceptLoop(ln net.Listener, l *boundListener) {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if b.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures (EMFILE...): back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			b.log.Warn("accept failed", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-b.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if b.throttleConnection(nc) {
			continue
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		b.connsMu.Lock()
		b.conns[nc] = struct{}{}
		b.connsMu.Unlock()
		if !b.goStart(func() {
			b.serveConn(nc, l)
			b.connsMu.Lock()
			delete(b.conns, nc)
			b.connsMu.Unlock()
		}) {
			nc.Close()
			return
		}
	}
}

// maintenanceLoop runs retention on log.retention.check.interval.ms and the
// time-based flush on log.flush.interval.ms / flush.ms.
func (b *Broker) maintenanceLoop() {
	retention := time.NewTicker(time.Duration(b.cfg.RetentionCheckIntervalMs) * time.Millisecond)
	defer retention.Stop()
	// Flush ticks at the smallest flush.ms that any log may need; the logs
	// decide whether they are due.
	flush := time.NewTicker(time.Second)
	defer flush.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case now := <-retention.C:
			b.topics.applyRetention(now)
			b.quotas.q.ExpireIdle(now) // forget idle clients' quota rates
		case now := <-flush.C:
			b.topics.flushDue(now)
		}
	}
}

// Close stops the broker: it stops accepting, closes client connections after
// their in-flight request (long polls return at once), stops the
// coordinators, then flushes and closes every log. It waits for all of that
// or until ctx is done. Calling Close again returns the first result.
func (b *Broker) Close(ctx context.Context) error {
	b.closeOnce.Do(func() {
		if b.cluster != nil && !b.crash {
			b.cluster.controlledShutdown(ctx)
		}
		b.startMu.Lock()
		b.closed = true
		b.startMu.Unlock()
		b.cancel()
		b.closeListeners()
		if b.cluster != nil && b.cluster.mux != nil { // a broker-only node has none
			b.cluster.mux.Other().Close()
		}
		b.connsMu.Lock()
		for nc := range b.conns {
			// Unblock readers waiting for the next request; a request being
			// handled finishes and its response is written first.
			nc.SetReadDeadline(time.Now())
		}
		b.connsMu.Unlock()
		done := make(chan struct{})
		go func() {
			b.goroutines.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			b.connsMu.Lock()
			for nc := range b.conns {
				nc.Close()
			}
			b.connsMu.Unlock()
			<-done
		}
		if b.cluster != nil {
			b.closeErr = b.cluster.close()
		}
		b.stopCoordinators()
		if !b.crash {
			b.closeErr = errors.Join(b.closeErr, b.topics.close())
		}
		if b.dirLock != nil {
			// Only now may another broker take the directory.
			b.closeErr = errors.Join(b.closeErr, b.dirLock.Close())
		}
		b.log.Info("broker stopped")
	})
	return b.closeErr
}

// NewClusterID is a random cluster id as Kafka's tools print one
// (kafka-storage.sh random-uuid): 16 bytes, URL-safe base64.
func NewClusterID() string {
	var id [16]byte
	rand.Read(id[:])
	return base64.RawURLEncoding.EncodeToString(id[:])
}

func writeMetaProperties(fsys storage.FS, path, clusterID string, nodeID int32) error {
	content := fmt.Sprintf("#\n#Written by kafkit\nnode.id=%d\ndirectory.id=%s\nversion=1\ncluster.id=%s\n", nodeID, NewClusterID(), clusterID)
	if err := writeFileAtomic(fsys, path, []byte(content)); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// ErrAlreadyFormatted is a log directory that holds meta.properties.
var ErrAlreadyFormatted = errors.New("already formatted")

// FormatLogDir writes meta.properties with clusterID and the node id into
// cfg's log directory, as kafka-storage.sh format does, and returns the
// directory. A directory already formatted is left as it is, with
// ErrAlreadyFormatted. (A broker formats an empty directory itself: this
// is only for scripts that run Kafka's format step.)
func FormatLogDir(cfg Config, clusterID string) (string, error) {
	fsys := storage.OSFS{}
	if err := fsys.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return cfg.DataDir, fmt.Errorf("log.dirs: %w", err)
	}
	path := cfg.DataDir + "/meta.properties"
	if _, err := readFile(fsys, path); err == nil {
		return cfg.DataDir, ErrAlreadyFormatted
	}
	return cfg.DataDir, writeMetaProperties(fsys, path, clusterID, int32(cfg.BrokerID))
}

// metaProperties is Kafka's meta.properties: cluster id and node id.
type metaProperties struct {
	clusterID string
}

// fresh names the cluster id of a directory never formatted.
func loadMetaProperties(fsys storage.FS, dir string, clusterID string, nodeID int32, fresh func() string) (metaProperties, error) {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return metaProperties{}, fmt.Errorf("log.dirs: %w", err)
	}
	path := dir + "/meta.properties"
	data, err := readFile(fsys, path)
	if err == nil {
		props, err := ReadProperties(bytesReader(data))
		if err != nil {
			return metaProperties{}, fmt.Errorf("%s: %w", path, err)
		}
		stored := props["cluster.id"]
		if clusterID != "" && stored != "" && stored != clusterID {
			return metaProperties{}, fmt.Errorf("cluster.id: configured %q but %s holds %q", clusterID, path, stored)
		}
		if err := checkStoredNodeID(props, path, nodeID); err != nil {
			return metaProperties{}, err
		}
		if stored != "" {
			return metaProperties{clusterID: stored}, nil
		}
	}
	if clusterID == "" {
		clusterID = fresh()
	}
	if err := writeMetaProperties(fsys, path, clusterID, nodeID); err != nil {
		return metaProperties{}, err
	}
	return metaProperties{clusterID: clusterID}, nil
}
