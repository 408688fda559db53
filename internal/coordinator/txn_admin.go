package coordinator

import (
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTransactions describes transactional ids (DescribeTransactions);
// an unknown one gets TRANSACTIONAL_ID_NOT_FOUND, one of a partition not
// served here NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS.
func (c *TxnCoordinator) DescribeTransactions(ids []string) []kmsg.DescribeTransactionsResponseTransactionState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]kmsg.DescribeTransactionsResponseTransactionState, 0, len(ids))
	for _, id := range ids {
		s := kmsg.NewDescribeTransactionsResponseTransactionState()
		s.TransactionalID, s.ProducerID, s.ProducerEpoch, s.StartTimestamp = id, -1, -1, -1
		if e := c.unavailable(id); e != nil {
			s.ErrorCode = e.Code
			out = append(out, s)
			continue
		}
		t := c.txns[id]
		if t == nil || t.producerID < 0 { // none, or its first InitProducerId is under way
			s.ErrorCode = kerr.TransactionalIDNotFound.Code
			out = append(out, s)
			continue
		}
		s.State, s.TimeoutMillis = t.state.String(), int32(t.timeout.Milliseconds())
		s.ProducerID, s.ProducerEpoch = t.producerID, t.epoch
		if t.state == kmsg.TransactionStateOngoing {
			s.StartTimestamp = t.started.UnixMilli()
		}
		for _, topic := range slices.Sorted(maps.Keys(t.partitions)) {
			st := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
			st.Topic, st.Partitions = topic, slices.Sorted(maps.Keys(t.partitions[topic]))
			s.Topics = append(s.Topics, st)
		}
		out = append(out, s)
	}
	return out
}

// ListTransactions lists transactional ids matching the request's filters
// (states, producer ids, v1 running longer than DurationFilterMillis, v2
// transactional id regular expression). Unknown state names come back in
// UnknownStateFilters, as Kafka does.
func (c *TxnCoordinator) ListTransactions(req *kmsg.ListTransactionsRequest) *kmsg.ListTransactionsResponse {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	states := map[kmsg.TransactionState]bool{}
	for _, name := range req.StateFilters {
		s, err := kmsg.ParseTransactionState(name)
		if err != nil {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
			continue
		}
		states[s] = true
	}
	var pattern *regexp.Regexp
	if req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		var err error
		if pattern, err = regexp.Compile(*req.TransactionalIDPattern); err != nil {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loading() {
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		return resp
	}
	now := time.Now()
	for _, id := range slices.Sorted(maps.Keys(c.txns)) {
		t := c.txns[id]
		switch {
		case t.producerID < 0, // its first InitProducerId is under way
			len(req.StateFilters) > 0 && !states[t.state],
			len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, t.producerID),
			req.DurationFilterMillis >= 0 && req.Version >= 1 && (t.state != kmsg.TransactionStateOngoing || now.Sub(t.started).Milliseconds() < req.DurationFilterMillis),
			pattern != nil && !pattern.MatchString(id):
			continue
		}
		s := kmsg.NewListTransactionsResponseTransactionState()
		s.TransactionalID, s.ProducerID, s.TransactionState = id, t.producerID, t.state.String()
		resp.TransactionStates = append(resp.TransactionStates, s)
	}
	return resp
}
