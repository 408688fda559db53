package broker_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/internal/recordbatch"
)

// scrape reads /metrics as Prometheus would.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// createTopic creates topic and returns its id.
func createTopic(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, partitions int32) [16]byte {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].TopicID
}

// metricValue is the value of the series name{labels} (label pairs in
// order), or -1 when absent.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		if len(m.Label) != len(labels)/2 {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	return -1
}

// TestMetricsDuringProduceConsume scrapes /metrics around a kgo produce and
// a group's consume: the message counters rise by exactly the records sent,
// bytes in equal what the logs grew by, the consumer's fetches count as bytes
// out, and a group that stopped consuming shows the lag of what was produced
// after it stopped.
func TestMetricsDuringProduceConsume(t *testing.T) {
	b := broker.NewTest(t)
	srv := httptest.NewServer(b.MetricsHandler())
	defer srv.Close()
	url := srv.URL + "/metrics"
	const topic, group, partitions = "metrics-topic", "metrics-group", 3
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopic(ctx, t, cl, topic, partitions)
	before := scrape(t, url)
	produce := func(n int, from int) {
		for i := range n {
			r := &kgo.Record{Key: []byte(strconv.Itoa(from + i)), Value: []byte(fmt.Sprintf("value-%d", from+i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	const first, second = 40, 25
	produce(first, 0)

	mid := scrape(t, url)
	delta := func(after map[string]*dto.MetricFamily, name string, labels ...string) float64 {
		return metricValue(after, name, labels...) - max(metricValue(before, name, labels...), 0)
	}
	for _, labels := range [][]string{nil, {"topic", topic}} {
		if got := delta(mid, "kafka_server_brokertopicmetrics_messagesin_total", labels...); got != first {
			t.Errorf("messagesin%v rose by %v, want %d", labels, got, first)
		}
		// ProduceSync of one record at a time: one partition per request.
		if got := delta(mid, "kafka_server_brokertopicmetrics_totalproducerequests_total", labels...); got != first {
			t.Errorf("totalproducerequests%v rose by %v, want %d", labels, got, first)
		}
	}
	var logBytes float64
	for p := range partitions {
		logBytes += metricValue(mid, "kafka_log_log_size", "topic", topic, "partition", strconv.Itoa(p))
	}
	if got := delta(mid, "kafka_server_brokertopicmetrics_bytesin_total", "topic", topic); got != logBytes || got <= 0 {
		t.Errorf("bytesin rose by %v, the logs hold %v bytes", got, logBytes)
	}
	if got := delta(mid, "kafka_server_brokertopicmetrics_failedproducerequests_total"); got != 0 {
		t.Errorf("failedproducerequests rose by %v", got)
	}
	var produces float64
	for _, m := range mid["kafka_network_requestmetrics_requests_total"].GetMetric() {
		if m.GetLabel()[0].GetValue() == "Produce" {
			produces += m.GetCounter().GetValue()
		}
	}
	if produces != first {
		t.Errorf("requests_total{request=Produce} sums to %v, want %d", produces, first)
	}
	if mid["kafka_network_requestmetrics_totaltimems"].GetMetric()[0].GetSummary().GetSampleCount() == 0 {
		t.Errorf("totaltimems has no samples")
	}

	// A group consumes everything, commits and leaves.
	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < first {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	consumer.Close()

	afterConsume := scrape(t, url)
	if got := delta(afterConsume, "kafka_server_brokertopicmetrics_bytesout_total", "topic", topic); got < logBytes {
		t.Errorf("bytesout rose by %v after consuming %v bytes of batches", got, logBytes)
	}
	if got := metricValue(afterConsume, "kafka_consumergroup_lag_sum", "consumergroup", group, "topic", topic); got != 0 {
		t.Errorf("lag_sum after consuming all = %v, want 0", got)
	}

	produce(second, first)
	after := scrape(t, url)
	if got := delta(after, "kafka_server_brokertopicmetrics_messagesin_total", "topic", topic); got != first+second {
		t.Errorf("messagesin rose by %v in all, want %d", got, first+second)
	}
	if got := metricValue(after, "kafka_consumergroup_lag_sum", "consumergroup", group, "topic", topic); got != second {
		t.Errorf("lag_sum of the stopped group = %v, want %d", got, second)
	}
	var lagSum, offSum float64
	for p := range partitions {
		ps := strconv.Itoa(p)
		lag := metricValue(after, "kafka_consumergroup_lag", "consumergroup", group, "topic", topic, "partition", ps)
		end := metricValue(after, "kafka_topic_partition_current_offset", "topic", topic, "partition", ps)
		committed := metricValue(after, "kafka_consumergroup_current_offset", "consumergroup", group, "topic", topic, "partition", ps)
		if lag != end-committed {
			t.Errorf("partition %d: lag %v, want high watermark %v - committed %v", p, lag, end, committed)
		}
		lagSum += lag
		offSum += end
	}
	if lagSum != second || offSum != first+second {
		t.Errorf("per-partition lag sums to %v (want %d), offsets to %v (want %d)", lagSum, second, offSum, first+second)
	}
	if got := metricValue(after, "kafka_coordinator_group_groupmetadatamanager_numgroupsempty"); got != 1 {
		t.Errorf("numgroupsempty = %v, want 1 (the group left)", got)
	}
	for name, want := range map[string]float64{
		"kafka_server_replicamanager_partitioncount":              partitions,
		"kafka_server_replicamanager_underreplicatedpartitions":   0,
		"kafka_controller_kafkacontroller_activecontrollercount":  1,
		"kafka_controller_kafkacontroller_offlinepartitionscount": 0,
	} {
		if got := metricValue(after, name); got < want || want == 0 && got != 0 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := metricValue(after, "kafka_server_socket_server_metrics_connection_count", "listener", "PLAINTEXT"); got < 1 {
		t.Errorf("connection_count = %v with a client connected", got)
	}
}

// TestMetricsFailedProduce: a partition the log refuses (two batches in one
// v3+ partition: INVALID_RECORD) counts as a failed produce request, one for
// a partition that does not exist counts as a request but not as a failure
// (Kafka marks neither UNKNOWN_TOPIC_OR_PARTITION nor NOT_LEADER as failed),
// and neither adds messages.
func TestMetricsFailedProduce(t *testing.T) {
	b := broker.NewTest(t)
	srv := httptest.NewServer(b.MetricsHandler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const topic = "failed-produce"
	id := createTopic(ctx, t, cl, topic, 1)
	bld := recordbatch.NewBuilder(recordbatch.Options{}, 0)
	bld.Append(time.Now().UnixMilli(), nil, []byte("v"), nil)
	batch, err := bld.Finish(recordbatch.NoProducer())
	if err != nil {
		t.Fatal(err)
	}
	before := scrape(t, srv.URL)
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, id // kgo sends its newest common version, by name or by id
	for _, p := range []struct {
		idx     int32
		records []byte
	}{{0, append(slices.Clip(batch), batch...)}, {7, batch}} {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p.idx, p.records
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	codes := []int16{resp.Topics[0].Partitions[0].ErrorCode, resp.Topics[0].Partitions[1].ErrorCode}
	if codes[0] != kerr.InvalidRecord.Code || codes[1] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("error codes %v, want INVALID_RECORD and UNKNOWN_TOPIC_OR_PARTITION", codes)
	}
	after := scrape(t, srv.URL)
	for name, want := range map[string]float64{
		"kafka_server_brokertopicmetrics_failedproducerequests_total": 1,
		"kafka_server_brokertopicmetrics_totalproducerequests_total":  2,
		"kafka_server_brokertopicmetrics_messagesin_total":            0,
	} {
		for _, labels := range [][]string{nil, {"topic", topic}} {
			if got := metricValue(after, name, labels...) - max(metricValue(before, name, labels...), 0); got != want {
				t.Errorf("%s%v rose by %v, want %v", name, labels, got, want)
			}
		}
	}
}
