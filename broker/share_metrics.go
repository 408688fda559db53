package broker

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kafkit/kafkit/internal/share"
)

// What became of the records share groups acquired on this broker (the
// share-partitions it leads). Kafka counts only lock timeouts, per
// share-partition (SharePartitionMetrics AcquisitionLockTimeoutPerSec);
// these say why every redelivery happened, which is what tells a consumer
// that is slow (lock timeouts) from one that gives records back (release,
// sessions and connections ending, members leaving).
var (
	descShareReleased = prometheus.NewDesc("kafkit_share_records_released_total",
		"Records acquired by a share group member that became available again, by reason: release_ack, lock_timeout, session_closed, connection_closed, member_left, member_expired.", []string{"reason"}, nil)
	descShareArchived = prometheus.NewDesc("kafkit_share_records_archived_total",
		"Records archived at group.share.delivery.count.limit instead of being released, by the reason of that last release.", []string{"reason"}, nil)
	descShareAccepted = prometheus.NewDesc("kafkit_share_records_accepted_total",
		"Records accepted by share group members, by the delivery count they were accepted at (1 to 10, the largest share.delivery.count.limit).", []string{"delivery_count"}, nil)
)

func (m *brokerMetrics) collectShare(ch chan<- prometheus.Metric) {
	if m.b.share == nil {
		return
	}
	st := m.b.share.Stats()
	for r := range st.Released {
		why := share.Release(r).String()
		ch <- prometheus.MustNewConstMetric(descShareReleased, prometheus.CounterValue, float64(st.Released[r].Load()), why)
		ch <- prometheus.MustNewConstMetric(descShareArchived, prometheus.CounterValue, float64(st.Archived[r].Load()), why)
	}
	for n := 1; n < len(st.Accepted); n++ {
		ch <- prometheus.MustNewConstMetric(descShareAccepted, prometheus.CounterValue, float64(st.Accepted[n].Load()), strconv.Itoa(n))
	}
}
