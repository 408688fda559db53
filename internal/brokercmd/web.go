package brokercmd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/console"
)

// httpListenKey is the server.properties key of the console's address.
const httpListenKey = "kafkit.http.listen"

// defaultHTTPListen is where the console and /metrics are served unless
// --http or kafkit.http.listen says otherwise.
const defaultHTTPListen = "127.0.0.1:8080"

// webServer serves the broker's /metrics and the web console (none on a
// controller-only node).
type webServer struct {
	addr    string
	srv     *http.Server
	console *console.Console
}

func startWeb(b *broker.Broker, addr string, controllerOnly bool, logger *slog.Logger) (*webServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", b.MetricsHandler())
	w := &webServer{addr: ln.Addr().String(), srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	if controllerOnly {
		// No client listener for a console to talk to: /metrics only.
		go w.srv.Serve(ln)
		return w, nil
	}
	// The console is a client like any other; a broker bound to every
	// interface is reached on loopback.
	host, port, _ := net.SplitHostPort(b.Addr())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := console.New(ctx, console.Config{BootstrapServers: []string{net.JoinHostPort(host, port)},
		Metrics: b.Metrics(), Logger: logger.With("component", "console")})
	if err != nil {
		ln.Close()
		return nil, err
	}
	mux.Handle("/", c)
	w.console = c
	go w.srv.Serve(ln)
	return w, nil
}

func (w *webServer) close(ctx context.Context) {
	w.srv.Shutdown(ctx)
	if w.console != nil {
		w.console.Close()
	}
}
