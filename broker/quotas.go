package broker

import (
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/auth"
)

// quotasFile holds the client quotas, in <log.dirs>, rewritten atomically
// on every change (Kafka keeps them in its metadata log).
const quotasFile = "client-quotas.json"

// clientQuotas are the quotas of AlterClientQuotas and the rates they are
// enforced over.
type clientQuotas struct {
	q  *auth.Quotas
	mu sync.Mutex // serializes changes with their write to quotasFile
	// any is whether some quota is set: without one, requests skip the
	// quota store's lock entirely.
	any atomic.Bool
}

// storedQuota is one entity's quotas in quotasFile.
type storedQuota struct {
	Entity []kmsg.AlterClientQuotasRequestEntryEntity
	Values map[string]float64
}

func (b *Broker) newQuotaStore() *auth.Quotas {
	return auth.NewQuotasWindows(int(b.cfg.QuotaWindowNum), time.Duration(b.cfg.QuotaWindowSizeSeconds)*time.Second)
}

func openQuotas(b *Broker) (*clientQuotas, error) {
	c := &clientQuotas{q: b.newQuotaStore()}
	var stored []storedQuota
	if err := readJSON(b.fs, b.cfg.DataDir+"/"+quotasFile, &stored); err != nil {
		return nil, err
	}
	restoreQuotas(c.q, stored)
	c.any.Store(len(stored) > 0)
	return c, nil
}

// storedQuotas lists every entity's quotas.
func storedQuotas(q *auth.Quotas) []storedQuota {
	var out []storedQuota
	for _, e := range q.Describe(kmsg.NewPtrDescribeClientQuotasRequest()).Entries {
		s := storedQuota{Values: map[string]float64{}}
		for _, ent := range e.Entity {
			s.Entity = append(s.Entity, kmsg.AlterClientQuotasRequestEntryEntity{Type: ent.Type, Name: ent.Name})
		}
		for _, v := range e.Values {
			s.Values[v.Key] = v.Value
		}
		out = append(out, s)
	}
	return out
}

// restoreQuotas sets stored into q through AlterClientQuotas.
func restoreQuotas(q *auth.Quotas, stored []storedQuota) { q.Alter(storedRequest(stored)) }

// storedRequest is the AlterClientQuotas request that sets stored.
func storedRequest(stored []storedQuota) *kmsg.AlterClientQuotasRequest {
	req := kmsg.NewPtrAlterClientQuotasRequest()
	for _, s := range stored {
		e := kmsg.NewAlterClientQuotasRequestEntry()
		e.Entity = s.Entity
		for k, v := range s.Values {
			e.Ops = append(e.Ops, kmsg.AlterClientQuotasRequestEntryOp{Key: k, Value: v})
		}
		req.Entries = append(req.Entries, e)
	}
	return req
}

// alterQuotas answers AlterClientQuotas: the change is validated and
// applied to a copy, stored, and only then applied to the live quotas.
func (b *Broker) alterQuotas(req *kmsg.AlterClientQuotasRequest) (*kmsg.AlterClientQuotasResponse, error) {
	if b.cluster != nil {
		return b.cluster.alterQuotas(req)
	}
	c := b.quotas
	c.mu.Lock()
	defer c.mu.Unlock()
	scratch := b.newQuotaStore()
	restoreQuotas(scratch, storedQuotas(c.q))
	resp := scratch.Alter(req)
	if req.ValidateOnly {
		return resp, nil
	}
	stored := storedQuotas(scratch)
	if err := writeJSON(b.fs, b.cfg.DataDir+"/"+quotasFile, stored); err != nil {
		return nil, err
	}
	c.q.Alter(req)
	c.any.Store(len(stored) > 0)
	return resp, nil
}

// quotaExempt are the APIs no quota applies to: what a client sends before
// it is authenticated.
func quotaExempt(key int16) bool {
	switch kmsg.Key(key) {
	case kmsg.ApiVersions, kmsg.SASLHandshake, kmsg.SASLAuthenticate:
		return true
	}
	return false
}

// withQuotas enforces the client quotas around every handler, as Kafka's
// ClientQuotaManager and ClientRequestQuotaManager: a Produce's record
// bytes count against producer_byte_rate, a Fetch response's against
// consumer_byte_rate, and handling time against request_percentage (a
// Fetch's time is left out: it is mostly its long-poll wait, which Kafka
// never counts). The response carries the throttle time at once and the
// connection reads nothing more until it has passed (KIP-219).
func (b *Broker) withQuotas(t *handlerTable) {
	for key, h := range t {
		if h == nil || quotaExempt(int16(key)) {
			continue
		}
		next := h.fn
		h.fn = func(rc *reqCtx, req kmsg.Request) (kmsg.Response, error) {
			if !b.quotas.any.Load() {
				return next(rc, req)
			}
			user := auth.ParsePrincipal(rc.principal).Name
			fetch, isFetch := req.(*kmsg.FetchRequest)
			if isFetch {
				if _, _, follower := replicaOf(rc.version, fetch); follower {
					return next(rc, req) // replication is not throttled
				}
				b.capFetch(user, rc.clientID, fetch)
			}
			start := time.Now()
			resp, err := next(rc, req)
			if err != nil {
				return resp, err
			}
			now := time.Now()
			var throttle time.Duration
			switch r := req.(type) {
			case *kmsg.ProduceRequest:
				var n int
				for _, t := range r.Topics {
					for _, p := range t.Partitions {
						n += len(p.Records)
					}
				}
				throttle = b.quotas.q.Record(now, user, rc.clientID, auth.ProducerByteRate, float64(n))
			case *kmsg.FetchRequest:
				throttle = b.throttleFetch(now, user, rc, resp.(*kmsg.FetchResponse))
			}
			if !isFetch {
				pct := float64(now.Sub(start)) * 100 / float64(time.Second)
				throttle = max(throttle, b.quotas.q.Record(now, user, rc.clientID, auth.RequestPercentage, pct))
			}
			if throttle > 0 {
				rc.throttle = throttle
				if tr, ok := resp.(interface{ SetThrottle(int32) }); ok {
					tr.SetThrottle(int32(min(throttle.Milliseconds(), math.MaxInt32)))
				}
			}
			return resp, nil
		}
	}
}

// capFetch limits a consumer's Fetch to what its consumer_byte_rate allows
// over the quota windows but one, as Kafka's getMaxValueInQuotaWindow, so
// that one response never exceeds what the quota can ever let through.
func (b *Broker) capFetch(user, clientID string, r *kmsg.FetchRequest) {
	limit, _, ok := b.quotas.q.Limit(user, clientID, auth.ConsumerByteRate)
	if !ok {
		return
	}
	window := limit * float64(max(b.cfg.QuotaWindowNum-1, 1)*b.cfg.QuotaWindowSizeSeconds)
	if capped := int32(min(window, math.MaxInt32)); r.MaxBytes <= 0 || r.MaxBytes > capped {
		r.MaxBytes = max(capped, 1)
	}
}

// throttleFetch records a Fetch response's bytes against consumer_byte_rate.
// A throttled Fetch is answered empty (its bytes taken back off the rate,
// its file chunks released), as Kafka's getThrottledResponse.
func (b *Broker) throttleFetch(now time.Time, user string, rc *reqCtx, fr *kmsg.FetchResponse) time.Duration {
	n := float64(fetchedBytes(fr, rc.chunks))
	throttle := b.quotas.q.Record(now, user, rc.clientID, auth.ConsumerByteRate, n)
	if throttle > 0 {
		b.quotas.q.Record(now, user, rc.clientID, auth.ConsumerByteRate, -n)
		fr.Topics = nil
		rc.dropChunks()
	}
	return throttle
}

// fetchedBytes is the size of a Fetch response's records, those sent from
// the segment files included.
func fetchedBytes(fr *kmsg.FetchResponse, chunks []pendingChunk) int {
	n := 0
	for _, t := range fr.Topics {
		for _, p := range t.Partitions {
			n += len(p.RecordBatches)
		}
	}
	for _, c := range chunks {
		n += int(c.chunk.Len) - len(c.marker)
	}
	return n
}

// muteForThrottle stops reading the connection for the throttle time of
// the response just sent (KIP-219), or until the connection closes.
func (c *conn) muteForThrottle(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.ctx.Done():
	}
}

// throttleConnection counts a new connection against its ip's
// connection_creation_rate; over the quota, the connection is not served
// and is closed once the throttle time has passed, as Kafka's
// ConnectionQuotas does, and it reports true.
func (b *Broker) throttleConnection(nc net.Conn) bool {
	if !b.quotas.any.Load() {
		return false
	}
	host, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	d := b.quotas.q.RecordConnection(time.Now(), host)
	if d <= 0 {
		return false
	}
	if !b.goStart(func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-b.ctx.Done():
		}
		nc.Close()
	}) {
		nc.Close()
	}
	return true
}
