package broker

import (
	"context"
	"encoding/binary"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metric names are those the Prometheus JMX exporter's standard Kafka rules
// give Kafka's JMX beans (Grafana dashboard 721), plus kafka_exporter's
// topic and consumer group series (dashboard 7589), so dashboards built for
// Kafka work unchanged. The hot paths only add to atomics; every gauge is
// computed when /metrics is scraped.

// topicStats are Kafka's BrokerTopicMetrics for one topic (or all topics).
type topicStats struct {
	messagesIn, bytesIn, bytesOut atomic.Uint64
	failedProduce, failedFetch    atomic.Uint64
	totalProduce, totalFetch      atomic.Uint64
	bytesRejected                 atomic.Uint64
}

// brokerMetrics holds the broker's counters and its Prometheus registry.
type brokerMetrics struct {
	b      *Broker
	all    topicStats
	topics sync.Map // topic name -> *topicStats

	// requests and latency are per API key and version, created on first use
	// so that /metrics lists only what clients used (as Kafka's JMX does).
	requests    [kmsg.MaxKey + 1][]atomic.Pointer[prometheus.Counter]
	latency     [kmsg.MaxKey + 1]atomic.Pointer[requestLatency]
	requestsVec *prometheus.CounterVec
	durationVec *prometheus.HistogramVec
	lastRotate  atomic.Int64 // unix nanoseconds of the latency windows' last swap

	reg *prometheus.Registry
}

func newBrokerMetrics(b *Broker) *brokerMetrics {
	m := &brokerMetrics{b: b, reg: prometheus.NewRegistry()}
	m.requestsVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kafka_network_requestmetrics_requests_total",
		Help: "Requests received, by API (Kafka's RequestMetrics RequestsPerSec).",
	}, []string{"request", "version"})
	m.durationVec = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:                        "kafkit_request_duration_seconds",
		Help:                        "Time to handle a request, by API (native histogram; classic buckets for scrapers without them).",
		Buckets:                     []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
		NativeHistogramBucketFactor: 1.1,
	}, []string{"request"})
	for key := range m.requests {
		if h := b.handlers.lookup(int16(key)); h != nil {
			m.requests[key] = make([]atomic.Pointer[prometheus.Counter], h.max+1)
		}
	}
	m.lastRotate.Store(time.Now().UnixNano())
	m.reg.MustRegister(m.requestsVec, m.durationVec, m,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the broker's metrics in Prometheus' exposition format.
func (b *Broker) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(b.metrics.reg, promhttp.HandlerOpts{})
}

// Metrics is the broker's registry, for embedding its metrics elsewhere.
func (b *Broker) Metrics() prometheus.Gatherer { return b.metrics.reg }

func (m *brokerMetrics) topic(name string) *topicStats {
	if s, ok := m.topics.Load(name); ok {
		return s.(*topicStats)
	}
	s, _ := m.topics.LoadOrStore(name, new(topicStats))
	return s.(*topicStats)
}

// request counts one handled request and its handling time.
func (m *brokerMetrics) request(key, version int16, start time.Time) {
	slot := &m.requests[key][version]
	c := slot.Load()
	if c == nil {
		nc := m.requestsVec.WithLabelValues(kmsg.NameForKey(key), strconv.Itoa(int(version)))
		slot.CompareAndSwap(nil, &nc)
		c = slot.Load()
	}
	(*c).Inc()
	rl := m.latency[key].Load()
	if rl == nil {
		m.latency[key].CompareAndSwap(nil, &requestLatency{native: m.durationVec.WithLabelValues(kmsg.NameForKey(key))})
		rl = m.latency[key].Load()
	}
	d := time.Since(start)
	rl.hist.observe(d)
	rl.native.Observe(d.Seconds())
}

// requestLatency is one API's request time: Kafka's TotalTimeMs
// percentiles come from hist, the native histogram from native.
type requestLatency struct {
	hist   latency
	native prometheus.Observer
}

// totalTimeQuantiles are the percentiles Kafka's JMX histograms expose
// (50thPercentile ... 999thPercentile).
var totalTimeQuantiles = []float64{0.5, 0.75, 0.95, 0.98, 0.99, 0.999}

// latencyWindow is how often the latency windows swap: the percentiles
// cover the last one to two of them.
const latencyWindow = time.Minute

func (m *brokerMetrics) collectLatency(ch chan<- prometheus.Metric) {
	now := time.Now().UnixNano()
	last := m.lastRotate.Load()
	rotate := now-last >= int64(latencyWindow) && m.lastRotate.CompareAndSwap(last, now)
	for key := range m.latency {
		rl := m.latency[key].Load()
		if rl == nil {
			continue
		}
		if rotate {
			rl.hist.rotate()
		}
		qs := rl.hist.quantiles(totalTimeQuantiles)
		byQ := make(map[float64]float64, len(qs))
		for i, q := range totalTimeQuantiles {
			byQ[q] = qs[i]
		}
		ch <- prometheus.MustNewConstSummary(descTotalTime, rl.hist.count.Load(), float64(rl.hist.sumUs.Load())/1000, byQ, kmsg.NameForKey(int16(key)))
	}
}

// produced counts one partition of a Produce request the way Kafka's
// ReplicaManager.appendToLocalLog does: every partition that reaches the log
// is a produce request; messages and bytes in count what was appended; a
// failure counts unless it is one Kafka answers without marking (unknown
// partition, record too large, corrupt batch). t is nil for unknown topics,
// which count broker-wide only.
func (m *brokerMetrics) produced(t *topic, records []byte, errCode int16) {
	if errCode == kerr.InvalidRequiredAcks.Code || t != nil && t.internal {
		return // refused before the append, as in Kafka
	}
	var ts *topicStats
	if t != nil {
		ts = m.topic(t.name)
		ts.totalProduce.Add(1)
	}
	m.all.totalProduce.Add(1)
	switch errCode {
	case 0:
		n, size := uint64(countRecords(records)), uint64(len(records))
		m.all.messagesIn.Add(n)
		m.all.bytesIn.Add(size)
		if ts != nil {
			ts.messagesIn.Add(n)
			ts.bytesIn.Add(size)
		}
	case kerr.MessageTooLarge.Code, kerr.RecordListTooLarge.Code:
		m.all.bytesRejected.Add(uint64(len(records)))
		if ts != nil {
			ts.bytesRejected.Add(uint64(len(records)))
		}
	case kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code, kerr.NotLeaderForPartition.Code,
		kerr.CorruptMessage.Code, kerr.KafkaStorageError.Code:
	default:
		m.all.failedProduce.Add(1)
		if ts != nil {
			ts.failedProduce.Add(1)
		}
	}
}

// countRecords sums the record counts of the batches in records (v2 batch
// header: records count at byte 57).
func countRecords(records []byte) int {
	n := 0
	for len(records) >= 61 {
		size := int(int32(binary.BigEndian.Uint32(records[8:]))) + 12
		if size < 61 || size > len(records) {
			break
		}
		n += int(int32(binary.BigEndian.Uint32(records[57:])))
		records = records[size:]
	}
	return n
}

// fetched counts a Fetch response: each partition in it is a fetch request
// (Kafka's TotalFetchRequestsPerSec), its record bytes are bytes out, and an
// error other than those Kafka answers without marking is a failed fetch.
// Record bytes sent from the segment files sit behind a marker in the
// response; chunks gives their real length.
func (m *brokerMetrics) fetched(resp *kmsg.FetchResponse, chunks []pendingChunk) {
	next := 0
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		name := rt.Topic
		if name == "" {
			if t := m.b.topics.getByID(rt.TopicID); t != nil {
				name = t.name
			}
		}
		var ts *topicStats
		if name != "" && m.b.topics.get(name) != nil {
			ts = m.topic(name)
		}
		for j := range rt.Partitions {
			p := &rt.Partitions[j]
			size := uint64(len(p.RecordBatches))
			if next < len(chunks) && len(p.RecordBatches) == markerLen && string(p.RecordBatches) == string(chunks[next].marker) {
				size = uint64(chunks[next].chunk.Len)
				next++
			}
			failed := false
			switch p.ErrorCode {
			case 0, kerr.OffsetOutOfRange.Code, kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code,
				kerr.NotLeaderForPartition.Code, kerr.UnknownLeaderEpoch.Code, kerr.FencedLeaderEpoch.Code,
				kerr.ReplicaNotAvailable.Code, kerr.KafkaStorageError.Code, kerr.InconsistentTopicID.Code:
			default:
				failed = true
			}
			for _, s := range [2]*topicStats{&m.all, ts} {
				if s == nil {
					continue
				}
				s.totalFetch.Add(1)
				s.bytesOut.Add(size)
				if failed {
					s.failedFetch.Add(1)
				}
			}
		}
	}
}

var (
	topicLabel     = []string{"topic"}
	partitionLabel = []string{"topic", "partition"}
	groupLabel     = []string{"consumergroup", "topic", "partition"}

	// brokerTopicDescs are the broker-wide series, brokerTopicDescsByTopic
	// the per-topic ones.
	brokerTopicDescs, brokerTopicDescsByTopic [8]*prometheus.Desc
	brokerTopicNames                          = [8]string{"messagesin", "bytesin", "bytesout", "bytesrejected",
		"failedproducerequests", "failedfetchrequests", "totalproducerequests", "totalfetchrequests"}

	descPartitionCount = gaugeDesc("kafka_server_replicamanager_partitioncount", "Partitions on this broker.")
	descLeaderCount    = gaugeDesc("kafka_server_replicamanager_leadercount", "Partitions this broker leads.")
	descUnderReplic    = gaugeDesc("kafka_server_replicamanager_underreplicatedpartitions", "Partitions whose ISR is smaller than their replicas.")
	descActiveCtrl     = gaugeDesc("kafka_controller_kafkacontroller_activecontrollercount", "1 on the active controller.")
	descOffline        = gaugeDesc("kafka_controller_kafkacontroller_offlinepartitionscount", "Partitions without a leader.")
	descGlobalParts    = gaugeDesc("kafka_controller_kafkacontroller_globalpartitioncount", "Partitions in the cluster.")
	descGlobalTopics   = gaugeDesc("kafka_controller_kafkacontroller_globaltopiccount", "Topics in the cluster.")
	descBrokers        = gaugeDesc("kafka_brokers", "Brokers in the cluster (kafka_exporter).")
	descTotalTime      = prometheus.NewDesc("kafka_network_requestmetrics_totaltimems", "Time to handle a request in milliseconds, by API (Kafka's RequestMetrics TotalTimeMs percentiles over the last minute or two).", []string{"request"}, nil)
	descConnections    = prometheus.NewDesc("kafka_server_socket_server_metrics_connection_count", "Open client connections, by listener.", []string{"listener"}, nil)

	descLogSize     = prometheus.NewDesc("kafka_log_log_size", "Bytes of a partition's log.", partitionLabel, nil)
	descLogStart    = prometheus.NewDesc("kafka_log_log_logstartoffset", "A partition's log start offset.", partitionLabel, nil)
	descLogEnd      = prometheus.NewDesc("kafka_log_log_logendoffset", "A partition's log end offset.", partitionLabel, nil)
	descCurrentOff  = prometheus.NewDesc("kafka_topic_partition_current_offset", "A partition's high watermark (kafka_exporter).", partitionLabel, nil)
	descOldestOff   = prometheus.NewDesc("kafka_topic_partition_oldest_offset", "A partition's log start offset (kafka_exporter).", partitionLabel, nil)
	descISR         = prometheus.NewDesc("kafka_topic_partition_in_sync_replica", "In-sync replicas of a partition (kafka_exporter).", partitionLabel, nil)
	descTopicParts  = prometheus.NewDesc("kafka_topic_partitions", "Partitions of a topic (kafka_exporter).", topicLabel, nil)
	descGroupOffset = prometheus.NewDesc("kafka_consumergroup_current_offset", "A group's committed offset (kafka_exporter).", groupLabel, nil)
	descGroupLag    = prometheus.NewDesc("kafka_consumergroup_lag", "High watermark minus the group's committed offset (kafka_exporter).", groupLabel, nil)
	descGroupLagSum = prometheus.NewDesc("kafka_consumergroup_lag_sum", "A group's lag summed over a topic's partitions (kafka_exporter).", []string{"consumergroup", "topic"}, nil)
	descGroupMember = prometheus.NewDesc("kafka_consumergroup_members", "Members of a group (kafka_exporter).", []string{"consumergroup"}, nil)
	descGroups      = gaugeDesc("kafka_coordinator_group_groupmetadatamanager_numgroups", "Consumer groups (Kafka's GroupMetadataManager NumGroups).")
	descGroupStates = map[string]*prometheus.Desc{}
)

// groupStates are the classic group states Kafka's GroupMetadataManager
// counts, each as NumGroups<State>.
var groupStates = []string{"PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Empty"}

func init() {
	for i, n := range brokerTopicNames {
		name, help := "kafka_server_brokertopicmetrics_"+n+"_total", "Kafka's BrokerTopicMetrics "+n+"; without a topic label, all topics."
		brokerTopicDescs[i] = prometheus.NewDesc(name, help, nil, nil)
		brokerTopicDescsByTopic[i] = prometheus.NewDesc(name, help, topicLabel, nil)
	}
	for _, s := range groupStates {
		descGroupStates[s] = gaugeDesc("kafka_coordinator_group_groupmetadatamanager_numgroups"+strings.ToLower(s), "Consumer groups in state "+s+".")
	}
}

func gaugeDesc(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }

// Describe sends nothing: the series change with topics and groups, so the
// collector is unchecked.
func (m *brokerMetrics) Describe(chan<- *prometheus.Desc) {}

// Collect computes the gauges and reports the topic counters.
func (m *brokerMetrics) Collect(ch chan<- prometheus.Metric) {
	m.collectTopicStats(ch, &m.all, "")
	m.collectLatency(ch)
	topics := m.b.topics.all()
	live := make(map[string]bool, len(topics))
	parts := 0
	hwm := map[string][]int64{}
	for _, t := range topics {
		live[t.name] = true
		parts += len(t.partitions)
		ch <- prometheus.MustNewConstMetric(descTopicParts, prometheus.GaugeValue, float64(len(t.partitions)), t.name)
		ends := make([]int64, len(t.partitions))
		for i, p := range t.partitions {
			pl := []string{t.name, strconv.Itoa(i)}
			ends[i] = p.log.EndOffset()
			ch <- prometheus.MustNewConstMetric(descLogSize, prometheus.GaugeValue, float64(p.log.Size()), pl...)
			ch <- prometheus.MustNewConstMetric(descLogStart, prometheus.GaugeValue, float64(p.log.StartOffset()), pl...)
			ch <- prometheus.MustNewConstMetric(descLogEnd, prometheus.GaugeValue, float64(ends[i]), pl...)
			ch <- prometheus.MustNewConstMetric(descCurrentOff, prometheus.GaugeValue, float64(ends[i]), pl...)
			ch <- prometheus.MustNewConstMetric(descOldestOff, prometheus.GaugeValue, float64(p.log.StartOffset()), pl...)
			ch <- prometheus.MustNewConstMetric(descISR, prometheus.GaugeValue, 1, pl...)
		}
		hwm[t.name] = ends
	}
	// Kafka drops a deleted topic's metrics.
	m.topics.Range(func(k, v any) bool {
		if name := k.(string); !live[name] {
			m.topics.Delete(name)
		} else {
			m.collectTopicStats(ch, v.(*topicStats), name)
		}
		return true
	})
	// One broker: it leads every partition, all replicas are in sync, and
	// it is the controller.
	for _, g := range []struct {
		d *prometheus.Desc
		v int
	}{
		{descPartitionCount, parts}, {descLeaderCount, parts}, {descUnderReplic, 0},
		{descActiveCtrl, 1}, {descOffline, 0}, {descGlobalParts, parts}, {descGlobalTopics, len(topics)}, {descBrokers, 1},
	} {
		ch <- prometheus.MustNewConstMetric(g.d, prometheus.GaugeValue, float64(g.v))
	}
	m.b.connsMu.Lock()
	conns := len(m.b.conns)
	m.b.connsMu.Unlock()
	ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, float64(conns), "PLAINTEXT")
	m.collectGroups(ch, hwm)
	m.collectShare(ch)
}

func (m *brokerMetrics) collectTopicStats(ch chan<- prometheus.Metric, s *topicStats, topic string) {
	vals := [8]uint64{s.messagesIn.Load(), s.bytesIn.Load(), s.bytesOut.Load(), s.bytesRejected.Load(),
		s.failedProduce.Load(), s.failedFetch.Load(), s.totalProduce.Load(), s.totalFetch.Load()}
	for i, v := range vals {
		if topic != "" {
			ch <- prometheus.MustNewConstMetric(brokerTopicDescsByTopic[i], prometheus.CounterValue, float64(v), topic)
		} else {
			ch <- prometheus.MustNewConstMetric(brokerTopicDescs[i], prometheus.CounterValue, float64(v))
		}
	}
}

// collectGroups reports group counts by state and each group's committed
// offsets and lag against the high watermarks in hwm, asking the group
// coordinator as a client's ListGroups and OffsetFetch would.
func (m *brokerMetrics) collectGroups(ch chan<- prometheus.Metric, hwm map[string][]int64) {
	ctx, cancel := context.WithTimeout(m.b.ctx, 5*time.Second)
	defer cancel()
	groups := m.b.coord.groups
	if groups == nil {
		return // a controller-only node
	}
	lg, err := groups.ListGroups(ctx, kmsg.NewPtrListGroupsRequest())
	if err != nil || lg.ErrorCode != 0 {
		return // still loading __consumer_offsets: no group series yet
	}
	counts := map[string]int{}
	for _, g := range lg.Groups {
		counts[g.GroupState]++
	}
	ch <- prometheus.MustNewConstMetric(descGroups, prometheus.GaugeValue, float64(len(lg.Groups)))
	for _, s := range groupStates {
		ch <- prometheus.MustNewConstMetric(descGroupStates[s], prometheus.GaugeValue, float64(counts[s]))
	}
	if len(lg.Groups) == 0 {
		return
	}
	dreq := kmsg.NewPtrDescribeGroupsRequest()
	for _, g := range lg.Groups {
		dreq.Groups = append(dreq.Groups, g.Group)
	}
	if dg, err := groups.DescribeGroups(ctx, dreq); err == nil {
		for _, g := range dg.Groups {
			ch <- prometheus.MustNewConstMetric(descGroupMember, prometheus.GaugeValue, float64(len(g.Members)), g.Group)
		}
	}
	for _, g := range lg.Groups {
		req := kmsg.NewOffsetFetchRequestGroup()
		req.Group = g.Group
		fg, err := groups.FetchOffsets(ctx, req, false)
		if err != nil || fg.ErrorCode != 0 {
			continue
		}
		for _, t := range fg.Topics {
			ends := hwm[t.Topic]
			var sum int64
			reported := false
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 || p.Offset < 0 || int(p.Partition) >= len(ends) {
					continue
				}
				labels := []string{g.Group, t.Topic, strconv.Itoa(int(p.Partition))}
				lag := max(ends[p.Partition]-p.Offset, 0)
				sum += lag
				reported = true
				ch <- prometheus.MustNewConstMetric(descGroupOffset, prometheus.GaugeValue, float64(p.Offset), labels...)
				ch <- prometheus.MustNewConstMetric(descGroupLag, prometheus.GaugeValue, float64(lag), labels...)
			}
			if reported {
				ch <- prometheus.MustNewConstMetric(descGroupLagSum, prometheus.GaugeValue, float64(sum), g.Group, t.Topic)
			}
		}
	}
}
