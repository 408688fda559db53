package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Multi serves the consoles of several clusters, each under
// /clusters/{name}/, with the list of clusters at /.
type Multi struct {
	consoles []*Console
	mux      *http.ServeMux
	user     string
	password string
}

// NewMulti starts a console per config; each needs a distinct Name (a path
// segment). Basic auth, when set, is the first config's for the list page;
// each console checks its own.
func NewMulti(ctx context.Context, cfgs []Config) (*Multi, error) {
	if len(cfgs) == 0 {
		return nil, errors.New("console: no clusters")
	}
	m := &Multi{mux: http.NewServeMux(), user: cfgs[0].Username, password: cfgs[0].Password}
	seen := map[string]bool{}
	for _, cfg := range cfgs {
		if cfg.Name == "" || strings.ContainsAny(cfg.Name, "/?#") || seen[cfg.Name] {
			m.Close()
			return nil, fmt.Errorf("console: cluster name %q: each cluster needs its own name without / ? or #", cfg.Name)
		}
		seen[cfg.Name] = true
		cfg.BasePath = "/clusters/" + url.PathEscape(cfg.Name)
		c, err := New(ctx, cfg)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("cluster %s: %w", cfg.Name, err)
		}
		c.multi = true
		m.consoles = append(m.consoles, c)
		m.mux.Handle(cfg.BasePath+"/", http.StripPrefix(cfg.BasePath, c))
	}
	m.mux.HandleFunc("GET /{$}", m.list)
	return m, nil
}

func (m *Multi) list(w http.ResponseWriter, r *http.Request) {
	if !guard(w, r, m.user, m.password) {
		return
	}
	// The list page is the first console's template set, outside any cluster.
	c := m.consoles[0]
	var names []string
	for _, c := range m.consoles {
		names = append(names, c.cfg.Name)
	}
	p := page{Title: "Clusters", Nav: "clusters", Data: names}
	if err := c.execute(w, http.StatusOK, "clusters", p); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func (m *Multi) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }

// Close closes every console.
func (m *Multi) Close() error {
	var errs []error
	for _, c := range m.consoles {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
