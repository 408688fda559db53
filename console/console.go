// Package console is kafkit's web console: server-rendered pages over any
// Kafka cluster (overview, topics, messages, consumer groups with their lag
// history, brokers and configs). It talks to the cluster only through
// kafkit's admin, consumer and producer clients, so it works the same on
// Apache Kafka as on kafkit's broker. Charts are drawn by uPlot (vendored in
// static/) from samples the console takes itself and keeps in memory.
//
//	c, err := console.New(ctx, console.Config{BootstrapServers: []string{"127.0.0.1:9092"}})
//	http.ListenAndServe("127.0.0.1:8080", c)
package console

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/producer"
)

//go:embed static templates
var assets embed.FS

// Config configures a console.
type Config struct {
	// Name names the cluster in the page header (and in NewMulti's list).
	Name             string
	BootstrapServers []string
	TLS              *tls.Config  // as the admin, consumer and producer configs
	SASL             *kafkit.SASL // as the admin, consumer and producer configs
	// ReadOnly hides every form that changes the cluster and refuses their
	// requests with 403.
	ReadOnly bool
	// Username and Password, when set, require HTTP basic authentication.
	Username, Password string
	// SampleInterval is how often throughput and lag are sampled for the
	// charts (default 5s); History is how long samples are kept (default 6h).
	SampleInterval, History time.Duration
	// Metrics, when set, is the broker's Prometheus registry (kafkit's
	// broker embeds the console): the overview then charts bytes in and out
	// from kafka_server_brokertopicmetrics_bytesin/bytesout_total. Without
	// it the console sees only what clients see: messages in per second.
	Metrics prometheus.Gatherer
	// BasePath is the path the console is mounted under (behind
	// http.StripPrefix(BasePath, console)); "" for the root. Every link
	// and redirect starts with it.
	BasePath string
	// MetricsURLs, when Metrics is nil, are Prometheus endpoints serving
	// those series (kafkit brokers' /metrics, or Kafka brokers' JMX
	// exporter), scraped at each sample and summed.
	MetricsURLs []string
	Logger      *slog.Logger
}

// Console serves the web console; it is an http.Handler.
type Console struct {
	cfg     Config
	admin   *admin.Client
	mux     *http.ServeMux
	sampler *sampler
	pages   map[string]*pageTemplate
	log     *slog.Logger
	multi   bool // served by a Multi

	prodMu   sync.Mutex
	producer *producer.Producer // created on the first produce

	cancel context.CancelFunc
	done   chan struct{}
}

// New connects to the cluster and starts sampling. Close stops it.
func New(ctx context.Context, cfg Config) (*Console, error) {
	if len(cfg.BootstrapServers) == 0 {
		return nil, errors.New("console: no bootstrap servers")
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, errors.New("console: basic auth needs both a username and a password")
	}
	if cfg.SampleInterval <= 0 {
		cfg.SampleInterval = 5 * time.Second
	}
	if cfg.History <= 0 {
		cfg.History = 6 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	adm, err := admin.New(ctx, admin.Config{BootstrapServers: cfg.BootstrapServers, ClientID: "kafkit-console",
		TLS: cfg.TLS, SASL: cfg.SASL, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	pages, err := parsePages()
	if err != nil {
		adm.Close()
		return nil, err
	}
	if cfg.Metrics == nil && len(cfg.MetricsURLs) > 0 {
		cfg.Metrics = scrapeURLs(cfg.MetricsURLs)
	}
	c := &Console{cfg: cfg, admin: adm, pages: pages, log: cfg.Logger, done: make(chan struct{})}
	c.sampler = newSampler(adm, cfg.Metrics, cfg.SampleInterval, cfg.History, cfg.Logger)
	c.routes()
	sctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		c.sampler.run(sctx)
	}()
	return c, nil
}

// Close stops sampling and closes the clients.
func (c *Console) Close() error {
	c.cancel()
	<-c.done
	c.prodMu.Lock()
	defer c.prodMu.Unlock()
	var perr error
	if c.producer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		perr = c.producer.Close(ctx)
		cancel()
	}
	return errors.Join(perr, c.admin.Close())
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /{$}", c.handle(c.overview))
	m.HandleFunc("GET /topics", c.handle(c.topicList))
	m.HandleFunc("GET /topics/{topic}", c.handle(c.topicPage))
	m.HandleFunc("GET /topics/{topic}/messages", c.handle(c.messages))
	m.HandleFunc("GET /groups", c.handle(c.groupList))
	m.HandleFunc("GET /groups/{group}", c.handle(c.groupPage))
	m.HandleFunc("GET /brokers", c.handle(c.brokerList))
	m.HandleFunc("GET /brokers/{id}", c.handle(c.brokerPage))
	m.HandleFunc("GET /acls", c.handle(c.aclList))
	m.HandleFunc("GET /api/series/overview", c.overviewSeries)
	m.HandleFunc("GET /api/series/groups/{group}", c.groupSeries)
	m.HandleFunc("GET /api/series/topics/{topic}", c.topicSeries)
	m.HandleFunc("POST /topics", c.write(c.createTopic))
	m.HandleFunc("POST /topics/{topic}/delete", c.write(c.deleteTopic))
	m.HandleFunc("POST /topics/{topic}/partitions", c.write(c.addPartitions))
	m.HandleFunc("POST /topics/{topic}/configs", c.write(c.alterTopicConfig))
	m.HandleFunc("POST /topics/{topic}/messages", c.write(c.produce))
	m.HandleFunc("POST /groups/{group}/reset", c.write(c.resetOffsets))
	m.HandleFunc("POST /groups/{group}/delete", c.write(c.deleteGroup))
	m.HandleFunc("POST /brokers/{id}/configs", c.write(c.alterBrokerConfig))
	c.mux = m
}

// ServeHTTP adds the security headers and basic auth to every response.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if guard(w, r, c.cfg.Username, c.cfg.Password) {
		c.mux.ServeHTTP(w, r)
	}
}

// guard sets the security headers every response carries and checks basic
// auth when user is set; false means it answered 401.
func guard(w http.ResponseWriter, r *http.Request, user, password string) bool {
	h := w.Header()
	// Everything is served from here: no inline script or style, no CDN.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if user == "" {
		return true
	}
	u, p, ok := r.BasicAuth()
	if ok && subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1 && subtle.ConstantTimeCompare([]byte(p), []byte(password)) == 1 {
		return true
	}
	h.Set("WWW-Authenticate", `Basic realm="kafkit console", charset="UTF-8"`)
	http.Error(w, "authentication required", http.StatusUnauthorized)
	return false
}

// write guards a handler that changes the cluster: refused in read-only
// mode, and only from the console's own pages (a form posted from another
// site carries its Origin), since basic auth credentials are sent by the
// browser whoever asks.
func (c *Console) write(fn handlerFunc) http.HandlerFunc {
	h := c.handle(fn)
	return func(w http.ResponseWriter, r *http.Request) {
		if c.cfg.ReadOnly {
			http.Error(w, "the console is read-only", http.StatusForbidden)
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			if u, err := url.Parse(o); err != nil || u.Host != r.Host {
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
		}
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			http.Error(w, "cross-site request refused", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

// handlerFunc serves a page or an action within ctx (bounded by
// requestTimeout); an error shows the error page with statusOf(err).
type handlerFunc func(ctx context.Context, w http.ResponseWriter, r *http.Request) error

// requestTimeout bounds the cluster calls behind one page.
const requestTimeout = 15 * time.Second

func (c *Console) handle(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		if err := fn(ctx, w, r); err != nil {
			if err := c.render(w, r, statusOf(err), "error", "Error", err.Error()); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		}
	}
}

// statusError gives an error the status the error page answers with;
// errors without one are the cluster's (502 Bad Gateway).
type statusError struct {
	status int
	error
}

func (e statusError) Unwrap() error { return e.error }

func badRequest(err error) error { return statusError{http.StatusBadRequest, err} }
func notFound(err error) error   { return statusError{http.StatusNotFound, err} }
func conflict(err error) error   { return statusError{http.StatusConflict, err} }

func statusOf(err error) int {
	if se, ok := errors.AsType[statusError](err); ok {
		return se.status
	}
	return http.StatusBadGateway
}
