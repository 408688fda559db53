package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/console"
	"github.com/spf13/cobra"
)

// consolePasswordEnv keeps the basic auth password off the command line
// (and out of ps).
const consolePasswordEnv = "KAFKIT_CONSOLE_PASSWORD"

func consoleCmd(g *globals) *cobra.Command {
	var (
		listen   string
		readOnly bool
		user     string
		metrics  []string
		clusters []string
	)
	cmd := &cobra.Command{
		Use:   "console [--listen 127.0.0.1:8080] [--read-only] [--username U] [--metrics-url URL ...]",
		Short: "Serve the web console for the cluster (topics, messages, groups and their lag, brokers)",
		Long: `Serve kafkit's web console for the cluster at --bootstrap-server until interrupted.
With --username, the console asks for HTTP basic authentication; the password is read from $` + consolePasswordEnv + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := clientConfig(g, nil, admin.ConfigFromProperties,
				func(c *admin.Config) (**tls.Config, **kafkit.SASL) { return &c.TLS, &c.SASL })
			if err != nil {
				return err
			}
			cc := console.Config{BootstrapServers: cfg.BootstrapServers, TLS: cfg.TLS, SASL: cfg.SASL, ReadOnly: readOnly, MetricsURLs: metrics}
			if user != "" {
				cc.Username = user
				if g.io.Getenv != nil {
					cc.Password = g.io.Getenv(consolePasswordEnv)
				}
				if cc.Password == "" {
					return fmt.Errorf("--username needs the password in $%s", consolePasswordEnv)
				}
			}
			return g.serveConsole(cmd.Context(), listen, cc, clusters)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve the console on")
	f.BoolVar(&readOnly, "read-only", false, "hide and refuse every change to the cluster")
	f.StringArrayVar(&clusters, "cluster", nil, "NAME=HOST:PORT[,HOST:PORT]: serve this cluster too, under /clusters/NAME/ (repeatable; --bootstrap-server is then the cluster named \"default\")")
	f.StringArrayVar(&metrics, "metrics-url", nil, "a broker's Prometheus endpoint (kafkit's /metrics, or Kafka's JMX exporter) for the bytes in/out chart (repeatable, one per broker)")
	f.StringVar(&user, "username", "", "require HTTP basic authentication as this user (password from $"+consolePasswordEnv+")")
	return cmd
}

func (g *globals) serveConsole(ctx context.Context, listen string, cfg console.Config, clusters []string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var handler http.Handler
	if len(clusters) == 0 {
		c, err := console.New(cctx, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		handler = c
	} else {
		cfg.Name = "default"
		cfgs := []console.Config{cfg}
		for _, spec := range clusters {
			name, servers, ok := strings.Cut(spec, "=")
			if !ok || name == "" || servers == "" {
				return fmt.Errorf("--cluster wants NAME=HOST:PORT, got %q", spec)
			}
			more := cfg
			more.Name, more.BootstrapServers, more.MetricsURLs = name, strings.Split(servers, ","), nil
			cfgs = append(cfgs, more)
		}
		m, err := console.NewMulti(cctx, cfgs)
		if err != nil {
			return err
		}
		defer m.Close()
		handler = m
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(g.io.Out, "kafkit console for %s on http://%s/\n", g.bootstrap, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
