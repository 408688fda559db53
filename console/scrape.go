package console

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeURLs gathers metrics from Prometheus endpoints, as Prometheus would
// scrape them; brokerBytes adds up the brokers' series.
type scrapeURLs []string

var scrapeClient = &http.Client{Timeout: 5 * time.Second}

func (urls scrapeURLs) Gather() ([]*dto.MetricFamily, error) {
	var out []*dto.MetricFamily
	var errs []error
	for _, u := range urls {
		fams, err := scrape(u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range fams {
			out = append(out, f)
		}
	}
	return out, errors.Join(errs...)
}

func scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := scrapeClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	return fams, nil
}
