package brokercmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kafkit/kafkit/broker"
)

// controllerPortOffset puts node i's CONTROLLER endpoint at its client
// port + 10000 (9092 → 19092) in a --nodes cluster.
const controllerPortOffset = 10000

// nodeConfigs turns one broker config into the configs of an n-node local
// cluster of combined nodes 1..n: client ports from base's port up, each
// node's data in its own directory under base's, one cluster id.
func nodeConfigs(base broker.Config, n int) ([]broker.Config, error) {
	host, portStr, err := net.SplitHostPort(base.Listen)
	if err != nil {
		return nil, fmt.Errorf("listeners: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("--nodes needs a fixed first port, got %q", base.Listen)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	var voters []string
	for i := range n {
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, net.JoinHostPort(host, strconv.Itoa(port+i+controllerPortOffset))))
	}
	clusterID := base.ClusterID
	if clusterID == "" {
		clusterID = storedClusterID(filepath.Join(base.DataDir, "node-1"))
	}
	if clusterID == "" {
		clusterID = broker.NewClusterID()
	}
	var out []broker.Config
	for i := range n {
		cfg := base
		if err := cfg.Set(map[string]string{"process.roles": "broker,controller", "controller.quorum.voters": strings.Join(voters, ",")}); err != nil {
			return nil, err
		}
		cfg.BrokerID, cfg.ClusterID = int64(i+1), clusterID
		cfg.Listen = net.JoinHostPort(host, strconv.Itoa(port+i))
		cfg.AdvertisedAddr = ""
		cfg.DataDir = filepath.Join(base.DataDir, fmt.Sprintf("node-%d", i+1))
		cfg.Logger = base.Logger.With("node", i+1)
		out = append(out, cfg)
	}
	return out, nil
}

// storedClusterID is the cluster id in dir's meta.properties, if any.
func storedClusterID(dir string) string {
	f, err := os.Open(filepath.Join(dir, "meta.properties"))
	if err != nil {
		return ""
	}
	defer f.Close()
	props, _ := broker.ReadProperties(f)
	return props["cluster.id"]
}

// runNodes runs a local cluster of n nodes in this process until a signal,
// then stops them all, each with a controlled shutdown.
func runNodes(base broker.Config, n int, stdout io.Writer) error {
	if base.InMemory {
		return errors.New("--nodes: a cluster keeps its metadata log on disk; drop --in-memory")
	}
	cfgs, err := nodeConfigs(base, n)
	if err != nil {
		return err
	}
	brokers := make([]*broker.Broker, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			brokers[i], errs[i] = broker.New(cfg)
		}()
	}
	wg.Wait()
	closeAll := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, b := range brokers {
			if b != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					b.Close(ctx)
				}()
			}
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		closeAll()
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	for i, b := range brokers {
		fmt.Fprintf(stdout, "kafkit broker %d listening on %s (data: %s, cluster id %s)\n", i+1, b.Addr(), b.DataDir(), b.ClusterID())
	}
	<-sig
	signal.Stop(sig)
	closeAll()
	fmt.Fprintln(stdout, "kafkit broker stopped")
	return nil
}
