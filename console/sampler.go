package console

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
)

// series is a ring of timestamped samples of one or more values, in uPlot's
// column layout: times (unix seconds) and one column per value.
type series struct {
	times []float64
	cols  [][]float64
}

func newSeries(n int) *series { return &series{cols: make([][]float64, n)} }

// add appends a sample and drops those older than keep.
func (s *series) add(now time.Time, keep time.Duration, vals ...float64) {
	s.times = append(s.times, float64(now.UnixMilli())/1000)
	for i, v := range vals {
		s.cols[i] = append(s.cols[i], v)
	}
	cut := float64(now.Add(-keep).UnixMilli()) / 1000
	drop := 0
	for drop < len(s.times) && s.times[drop] < cut {
		drop++
	}
	if drop > 0 {
		s.times = append(s.times[:0], s.times[drop:]...)
		for i := range s.cols {
			s.cols[i] = append(s.cols[i][:0], s.cols[i][drop:]...)
		}
	}
}

// data is the series as uPlot's data argument; NaN (unknown) becomes null.
func (s *series) data() [][]*float64 {
	out := make([][]*float64, 1+len(s.cols))
	for i, col := range append([][]float64{s.times}, s.cols...) {
		out[i] = make([]*float64, len(col))
		for j := range col {
			if !math.IsNaN(col[j]) {
				out[i][j] = &col[j]
			}
		}
	}
	return out
}

// sampler polls the cluster every interval: message rates from the high
// watermarks (what any client can see), bytes rates from the broker's own
// metrics when the console runs inside it, and every group's total lag.
type sampler struct {
	admin    *admin.Client
	metrics  prometheus.Gatherer
	interval time.Duration
	keep     time.Duration
	log      *slog.Logger

	mu       sync.Mutex
	last     time.Time
	ends     map[string]int64 // per topic: the sum of its partitions' high watermarks
	bytes    [2]float64       // bytes in and out counters at last
	overview *series          // messages in/s, bytes in/s, bytes out/s
	topics   map[string]*series
	rates    map[string]float64 // latest messages/s per topic
	topicLag map[string]int64   // latest lag per topic, summed over its groups
	groups   map[string]*series // total lag
}

func newSampler(adm *admin.Client, metrics prometheus.Gatherer, interval, keep time.Duration, log *slog.Logger) *sampler {
	return &sampler{admin: adm, metrics: metrics, interval: interval, keep: keep, log: log,
		overview: newSeries(3), topics: map[string]*series{}, rates: map[string]float64{}, groups: map[string]*series{}}
}

func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *sampler) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(s.interval, 5*time.Second))
	defer cancel()
	now := time.Now()
	ends, err := s.topicEnds(ctx)
	if err != nil {
		s.log.Debug("console: sampling offsets failed", "err", err)
		return
	}
	bytes := [2]float64{math.NaN(), math.NaN()}
	if s.metrics != nil {
		bytes = brokerBytes(s.metrics)
	}
	lags := map[string]float64{}
	topicLag := map[string]int64{}
	if groups, err := s.admin.ListGroups(ctx); err == nil {
		for _, g := range groups {
			if gl, err := s.admin.Lag(ctx, g.Group); err == nil {
				lags[g.Group] = float64(gl.Total)
				for _, p := range gl.Partitions {
					topicLag[p.Topic] += max(p.Lag, 0)
				}
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.last.IsZero() {
		dt := now.Sub(s.last).Seconds()
		rate := func(cur, prev float64) float64 { return max(cur-prev, 0) / dt }
		var total float64
		for topic, end := range ends {
			r := math.NaN()
			if prev, ok := s.ends[topic]; ok {
				r = rate(float64(end), float64(prev))
				total += r
			}
			ts := s.topics[topic]
			if ts == nil {
				ts = newSeries(1)
				s.topics[topic] = ts
			}
			ts.add(now, s.keep, r)
			s.rates[topic] = r
		}
		s.overview.add(now, s.keep, total, rate(bytes[0], s.bytes[0]), rate(bytes[1], s.bytes[1]))
	}
	for topic := range s.topics {
		if _, ok := ends[topic]; !ok {
			delete(s.topics, topic)
			delete(s.rates, topic)
		}
	}
	for g, lag := range lags {
		gs := s.groups[g]
		if gs == nil {
			gs = newSeries(1)
			s.groups[g] = gs
		}
		gs.add(now, s.keep, lag)
	}
	for g := range s.groups {
		if _, ok := lags[g]; !ok {
			delete(s.groups, g)
		}
	}
	s.last, s.ends, s.bytes, s.topicLag = now, ends, bytes, topicLag
}

// topicEnds sums each topic's high watermarks.
func (s *sampler) topicEnds(ctx context.Context) (map[string]int64, error) {
	tps, err := s.admin.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	offs, err := s.admin.ListOffsets(ctx, kafkit.OffsetLatest, tps...)
	if err != nil && len(offs) == 0 && len(tps) > 0 {
		return nil, err
	}
	ends := map[string]int64{}
	for _, tp := range tps {
		ends[tp.Topic] += max(offs[tp].Offset, 0)
	}
	return ends, nil
}

// brokerBytes sums the brokers' broker-wide bytes in and out counters;
// unknown (NaN) unless every broker answered.
func brokerBytes(g prometheus.Gatherer) [2]float64 {
	out := [2]float64{math.NaN(), math.NaN()}
	fams, err := g.Gather()
	if err != nil {
		return out
	}
	out = [2]float64{}
	found := [2]bool{}
	for _, f := range fams {
		i := -1
		switch f.GetName() {
		case "kafka_server_brokertopicmetrics_bytesin_total":
			i = 0
		case "kafka_server_brokertopicmetrics_bytesout_total":
			i = 1
		}
		if i < 0 {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) == 0 {
				out[i] += m.GetCounter().GetValue() + m.GetUntyped().GetValue()
				found[i] = true
			}
		}
	}
	for i := range out {
		if !found[i] {
			out[i] = math.NaN()
		}
	}
	return out
}

// overviewData, topicData and groupData copy a series for JSON (empty
// columns when there is none yet).
func (s *sampler) overviewData() [][]*float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overview.data()
}

func (s *sampler) topicData(topic string) [][]*float64 { return s.data(s.topics, topic) }

func (s *sampler) groupData(group string) [][]*float64 { return s.data(s.groups, group) }

func (s *sampler) data(m map[string]*series, key string) [][]*float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ser := m[key]; ser != nil {
		return ser.data()
	}
	return newSeries(1).data()
}

// lagOf is a topic's lag summed over the groups that committed offsets
// for it, at the latest sample (-1 when no group did).
func (s *sampler) lagOf(topic string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.topicLag[topic]; ok {
		return l
	}
	return -1
}

// topicRate is a topic's latest messages/s (NaN before two samples).
func (s *sampler) topicRate(topic string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.rates[topic]; ok {
		return r
	}
	return math.NaN()
}
