package console

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/consumer"
	"github.com/kafkit/kafkit/producer"
)

// shown is a key, value or header value as the message browser shows it.
type shown struct {
	Text string
	Kind string // "null", "json", "text" or "hex"
}

func show(b []byte) shown {
	trimmed := bytes.TrimSpace(b)
	switch {
	case b == nil:
		return shown{Text: "null", Kind: "null"}
	case len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && json.Valid(trimmed):
		var out bytes.Buffer
		json.Indent(&out, b, "", "  ")
		return shown{Text: out.String(), Kind: "json"}
	case utf8.Valid(b) && printable(b):
		return shown{Text: string(b), Kind: "text"}
	}
	return shown{Text: hex.Dump(b), Kind: "hex"}
}

func printable(b []byte) bool {
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// message is one record on the message browser.
type message struct {
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       shown
	Value     shown
	Headers   []struct {
		Key   string
		Value shown
	}
}

func (m message) matches(q string) bool {
	if q == "" {
		return true
	}
	q = strings.ToLower(q)
	if strings.Contains(strings.ToLower(m.Key.Text), q) || strings.Contains(strings.ToLower(m.Value.Text), q) {
		return true
	}
	for _, h := range m.Headers {
		if strings.Contains(strings.ToLower(h.Key), q) || strings.Contains(strings.ToLower(h.Value.Text), q) {
			return true
		}
	}
	return false
}

// browseQuery is the message browser's form.
type browseQuery struct {
	Partition int32 // -1: all
	Offset    string
	Time      string
	Newest    bool
	Limit     int
	Filter    string
}

const maxBrowse = 500

func parseBrowse(r *http.Request) (browseQuery, error) {
	q := r.URL.Query()
	b := browseQuery{Partition: -1, Offset: strings.TrimSpace(q.Get("offset")), Time: strings.TrimSpace(q.Get("time")),
		Newest: q.Get("order") != "oldest", Limit: 50, Filter: q.Get("q")}
	if p := q.Get("partition"); p != "" && p != "all" {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil || n < 0 {
			return b, fmt.Errorf("partition %q is not a partition number", p)
		}
		b.Partition = int32(n)
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return b, fmt.Errorf("limit %q is not a positive number", l)
		}
		b.Limit = min(n, maxBrowse)
	}
	return b, nil
}

func (c *Console) messages(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	topic := r.PathValue("topic")
	bq, err := parseBrowse(r)
	if err != nil {
		return badRequest(err)
	}
	tps, err := c.admin.Partitions(ctx, topic)
	if err != nil {
		return notFound(err)
	}
	all := tps
	if bq.Partition >= 0 {
		if int(bq.Partition) >= len(tps) {
			return badRequest(fmt.Errorf("%s has no partition %d", topic, bq.Partition))
		}
		tps = []kafkit.TopicPartition{{Topic: topic, Partition: bq.Partition}}
	}
	msgs, err := c.browse(ctx, tps, bq)
	if err != nil {
		return err
	}
	return c.render(w, r, http.StatusOK, "messages", topic+" messages", struct {
		Topic      string
		Partitions []kafkit.TopicPartition
		Query      browseQuery
		Messages   []message
	}{topic, all, bq, msgs})
}

// browse reads each partition's window of records (limit records from the
// start point: the given offset or time, else the oldest or the newest),
// keeps those matching the filter, and returns up to limit, newest or oldest
// first. With a filter the window is wider so matches further away show.
func (c *Console) browse(ctx context.Context, tps []kafkit.TopicPartition, bq browseQuery) ([]message, error) {
	starts, err := c.admin.ListOffsets(ctx, kafkit.OffsetEarliest, tps...)
	if err != nil {
		return nil, err
	}
	ends, err := c.admin.ListOffsets(ctx, kafkit.OffsetLatest, tps...)
	if err != nil {
		return nil, err
	}
	window := int64(bq.Limit)
	if bq.Filter != "" {
		window *= 20
	}
	var byTime map[kafkit.TopicPartition]int64
	if bq.Time != "" {
		t, err := parseTime(bq.Time)
		if err != nil {
			return nil, err
		}
		offs, err := c.admin.ListOffsets(ctx, t.UnixMilli(), tps...)
		if err != nil {
			return nil, err
		}
		byTime = map[kafkit.TopicPartition]int64{}
		for tp, o := range offs {
			byTime[tp] = o.Offset
		}
	}
	from := map[kafkit.TopicPartition][2]int64{}
	for _, tp := range tps {
		lo, hi := starts[tp].Offset, ends[tp].Offset
		var a, b int64
		switch {
		case bq.Offset != "":
			o, err := strconv.ParseInt(bq.Offset, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("offset %q is not a number", bq.Offset)
			}
			if bq.Newest {
				b = min(o+1, hi)
				a = b - window
			} else {
				a = o
				b = a + window
			}
		case byTime != nil:
			a = byTime[tp]
			if a < 0 {
				a = hi
			}
			b = a + window
		case bq.Newest:
			a, b = hi-window, hi
		default:
			a, b = lo, lo+window
		}
		a, b = max(a, lo), min(b, hi)
		if a < b {
			from[tp] = [2]int64{a, b}
		}
	}
	msgs, err := c.read(ctx, from)
	if err != nil {
		return nil, err
	}
	msgs = slices.DeleteFunc(msgs, func(m message) bool { return !m.matches(bq.Filter) })
	slices.SortFunc(msgs, func(a, b message) int {
		d := a.Timestamp.Compare(b.Timestamp)
		if d == 0 {
			d = int(a.Partition - b.Partition)
		}
		if d == 0 {
			d = int(a.Offset - b.Offset)
		}
		if bq.Newest {
			return -d
		}
		return d
	})
	if len(msgs) > bq.Limit {
		msgs = msgs[:bq.Limit]
	}
	return msgs, nil
}

// read reads each partition's [from, to) with a consumer that has no group.
func (c *Console) read(ctx context.Context, ranges map[kafkit.TopicPartition][2]int64) ([]message, error) {
	if len(ranges) == 0 {
		return nil, nil
	}
	cons, err := consumer.New(ctx, consumer.Config{BootstrapServers: c.cfg.BootstrapServers, ClientID: "kafkit-console",
		DisableAutoCommit: true, TLS: c.cfg.TLS, SASL: c.cfg.SASL, Logger: c.log})
	if err != nil {
		return nil, err
	}
	defer cons.Close(context.Background())
	var tps []kafkit.TopicPartition
	for tp := range ranges {
		tps = append(tps, tp)
	}
	if err := cons.Assign(tps...); err != nil {
		return nil, err
	}
	for tp, rg := range ranges {
		if err := cons.Seek(ctx, tp, rg[0]); err != nil {
			return nil, err
		}
	}
	// A partition is done when its position reaches the range's end; that
	// also ends ranges whose last offsets are transaction markers or were
	// compacted away, which Poll never returns.
	done := map[kafkit.TopicPartition]bool{}
	var out []message
	for len(done) < len(ranges) {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		recs, err := cons.Poll(pctx)
		cancel()
		if err != nil && ctx.Err() != nil {
			if len(out) > 0 {
				break // show what arrived
			}
			return nil, err
		}
		for _, rec := range recs {
			rg := ranges[kafkit.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}]
			if rec.Offset >= rg[0] && rec.Offset < rg[1] {
				out = append(out, toMessage(rec))
			}
		}
		for tp, rg := range ranges {
			if pos, err := cons.Position(ctx, tp); err == nil && pos >= rg[1] {
				done[tp] = true
			}
		}
	}
	return out, nil
}

func toMessage(r *kafkit.Record) message {
	m := message{Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: show(r.Key), Value: show(r.Value)}
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, struct {
			Key   string
			Value shown
		}{h.Key, show(h.Value)})
	}
	return m
}

// produce sends one record from the form: key, value, headers (one
// key=value per line) and an optional partition.
func (c *Console) produce(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	topic := r.PathValue("topic")
	rec := &kafkit.Record{Topic: topic, Partition: kafkit.AnyPartition, Value: []byte(r.FormValue("value"))}
	if k := r.FormValue("key"); k != "" {
		rec.Key = []byte(k)
	}
	if p, err := formInt(r, "partition", -1); err != nil {
		return badRequest(fmt.Errorf("produce: partition %q is not a number", r.FormValue("partition")))
	} else {
		rec.Partition = int32(p)
	}
	for _, line := range strings.Split(r.FormValue("headers"), "\n") {
		if line = strings.TrimRight(line, "\r"); strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return badRequest(fmt.Errorf("produce: header line %q is not key=value", line))
		}
		rec.Headers = append(rec.Headers, kafkit.Header{Key: k, Value: []byte(v)})
	}
	p, err := c.getProducer()
	if err == nil {
		err = p.SendSync(ctx, rec)
	}
	if err != nil {
		return err
	}
	c.redirectDone(w, r, "/topics/"+url.PathEscape(topic)+"/messages",
		fmt.Sprintf("produced to partition %d at offset %d", rec.Partition, rec.Offset))
	return nil
}

func (c *Console) getProducer() (*producer.Producer, error) {
	c.prodMu.Lock()
	defer c.prodMu.Unlock()
	if c.producer == nil {
		p, err := producer.New(producer.Config{BootstrapServers: c.cfg.BootstrapServers, ClientID: "kafkit-console",
			TLS: c.cfg.TLS, SASL: c.cfg.SASL, Logger: c.log})
		if err != nil {
			return nil, err
		}
		c.producer = p
	}
	return c.producer, nil
}

// dropProducer closes the producer so the next produce starts with fresh
// metadata.
func (c *Console) dropProducer() {
	c.prodMu.Lock()
	p := c.producer
	c.producer = nil
	c.prodMu.Unlock()
	if p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	}
}
