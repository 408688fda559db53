// Package brokercmd is the broker's command line: flags, server.properties
// and overrides, signals, the web console's address, and printing. cmd/broker
// runs it, and so does kafkit as kafka-server-start.sh.
package brokercmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kafkit/kafkit/broker"
)

type overrides []string

func (o *overrides) String() string     { return strings.Join(*o, ",") }
func (o *overrides) Set(v string) error { *o = append(*o, v); return nil }

// Run runs a broker as the command line args ask (see cmd/broker) until
// the process gets an interrupt or SIGTERM, printing "kafkit broker
// listening on ADDR ..." once it serves and "kafkit broker stopped" after a
// clean shutdown.
func Run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "server.properties file (Kafka's keys)")
	listen := fs.String("listen", "", "address to listen on, host:port (overrides listeners; default 127.0.0.1:9092)")
	dataDir := fs.String("data-dir", "", "log directory (overrides log.dirs; default $TMPDIR/kafkit-logs)")
	inMemory := fs.Bool("in-memory", false, "keep all data in memory (nothing survives a restart)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until shutdown")
	httpAddr := fs.String("http", "", "address of the web console and /metrics, host:port (overrides kafkit.http.listen; default 127.0.0.1:8080; empty turns them off)")
	nodes := fs.Int("nodes", 1, "run a local cluster of this many combined nodes in this process (client ports from --listen's up, CONTROLLER ports 10000 above them, data in node-N under --data-dir)")
	var props overrides
	fs.Var(&props, "override", "key=value overriding a server.properties key (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	fileProps := map[string]string{}
	if *configPath != "" {
		f, err := os.Open(*configPath)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		fileProps, err = broker.ReadProperties(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("--config %s: %w", *configPath, err)
		}
	} else {
		for k, v := range broker.DevOverrides {
			fileProps[k] = v
		}
	}
	for _, kv := range props {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--override: want key=value, got %q", kv)
		}
		fileProps[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	httpListen, httpChosen := fileProps[httpListenKey]
	delete(fileProps, httpListenKey)
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "http" {
			httpListen, httpChosen = *httpAddr, true
		}
	})
	if !httpChosen {
		httpListen = defaultHTTPListen
	}
	cfg, unknown, err := broker.ConfigFromProperties(fileProps)
	if err != nil {
		return err
	}
	for _, k := range unknown {
		if strings.HasPrefix(k, "zookeeper.") {
			logger.Warn("ZooKeeper is not used: a kafkit broker keeps its metadata itself, as Kafka does in KRaft mode; key ignored (for a cluster use process.roles, node.id and controller.quorum.voters)", "key", k)
			continue
		}
		logger.Warn("unknown configuration key ignored", "key", k)
	}
	if _, ok := fileProps["listeners"]; !ok || *listen != "" {
		cfg.Listen, cfg.Listeners = "127.0.0.1:9092", nil
		if *listen != "" {
			cfg.Listen = *listen
		}
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(os.TempDir(), "kafkit-logs")
	}
	cfg.InMemory = *inMemory
	cfg.Logger = logger

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if *nodes > 1 {
		return runNodes(cfg, *nodes, stdout)
	}
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	// Signals are caught before the address is printed: whoever waits for
	// that line may stop the broker right away. The same two work on every
	// platform: on Windows, Go delivers Ctrl-C and Ctrl-Break as
	// os.Interrupt and closing the console, logging off or shutting down as
	// SIGTERM.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	fmt.Fprintf(stdout, "kafkit broker listening on %s (data: %s, cluster id %s)\n", b.Addr(), b.DataDir(), b.ClusterID())
	var web *webServer
	if httpListen != "" {
		web, err = startWeb(b, httpListen, slices.Equal(cfg.ProcessRoles, []string{"controller"}), logger)
		switch {
		case err != nil && httpChosen:
			b.Close(context.Background())
			return err
		case err != nil:
			// The default port may be taken (a second broker on the
			// machine); the broker itself is still useful.
			logger.Warn("no web console or /metrics", "err", err, "hint", "choose an address with --http")
		default:
			fmt.Fprintf(stdout, "kafkit console on http://%s/ (Prometheus metrics at /metrics)\n", web.addr)
		}
	}
	s := <-sig
	signal.Stop(sig)
	logger.Info("shutting down", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if web != nil {
		web.close(ctx)
	}
	if err := b.Close(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	fmt.Fprintln(stdout, "kafkit broker stopped")
	return nil
}
