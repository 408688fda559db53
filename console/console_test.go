package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/admin"
	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/console"
)

// serve starts a console for the cluster at addr behind an HTTP server.
func serve(t *testing.T, addr string, cfg console.Config) *httptest.Server {
	t.Helper()
	cfg.BootstrapServers = []string{addr}
	if cfg.SampleInterval == 0 {
		cfg.SampleInterval = 100 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := console.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(func() {
		srv.Close()
		if err := c.Close(); err != nil {
			t.Errorf("closing the console: %v", err)
		}
	})
	return srv
}

// noRedirect lets tests see an action's 303 and where it leads.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// get fetches path and fails unless the status is want; it returns the body.
func get(t *testing.T, srv *httptest.Server, path string, want int) string {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %s, want %d:\n%.3000s", path, resp.Status, want, body)
	}
	return string(body)
}

// post submits a form and fails unless the status is want; it returns the
// body, or for a redirect its location.
func post(t *testing.T, srv *httptest.Server, path string, form url.Values, want int) string {
	t.Helper()
	resp, err := noRedirect.PostForm(srv.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s %v: %s, want %d:\n%.3000s", path, form, resp.Status, want, body)
	}
	if want == http.StatusSeeOther {
		return resp.Header.Get("Location")
	}
	return string(body)
}

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q:\n%.4000s", what, w, body)
		}
	}
}

// consumeAndStop reads n records of topic in group, commits and leaves.
func consumeAndStop(t *testing.T, addr, group, topic string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := 0
	for got < n {
		fs := cl.PollRecords(ctx, n-got)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestConsolePagesAndActions drives every page and action against kafkit's
// broker: create a topic, produce (text, JSON, binary, headers), browse and
// filter, add partitions, edit and reset configs, a group's lag and its
// offset reset (dry run, execute, refused while active), deletes.
func TestConsolePagesAndActions(t *testing.T) {
	b := broker.NewTest(t)
	srv := serve(t, b.Addr(), console.Config{Metrics: b.Metrics()})
	const topic = "orders"

	mustContain(t, "overview", get(t, srv, "/", 200), b.ClusterID(), `id="brokers">1<`, `id="controller">0<`, "chart-bytes")
	mustContain(t, "acls without an authorizer", get(t, srv, "/acls", 200), `id="acls-disabled"`, "SECURITY_DISABLED")
	if loc := post(t, srv, "/topics", url.Values{"name": {topic}, "partitions": {"2"}}, http.StatusSeeOther); !strings.HasPrefix(loc, "/topics/"+topic+"?done=") {
		t.Errorf("create redirects to %q", loc)
	}
	post(t, srv, "/topics", url.Values{"name": {topic}}, http.StatusBadRequest) // exists
	mustContain(t, "topic list", get(t, srv, "/topics", 200), `href="/topics/orders"`)
	if body := get(t, srv, "/topics?q=zzz", 200); strings.Contains(body, `href="/topics/orders"`) {
		t.Error("the search for zzz lists orders")
	}

	post(t, srv, "/topics/"+topic+"/messages", url.Values{"key": {"k-text"}, "value": {"hello console"}, "partition": {"0"}}, http.StatusSeeOther)
	post(t, srv, "/topics/"+topic+"/messages", url.Values{"key": {"k-json"}, "value": {`{"id":7,"items":["a"]}`},
		"headers": {"trace=abc\nsource=test"}, "partition": {"1"}}, http.StatusSeeOther)
	post(t, srv, "/topics/"+topic+"/messages", url.Values{"key": {"k-bin"}, "value": {"\x00\x01\x02\xff"}, "partition": {"1"}}, http.StatusSeeOther)
	post(t, srv, "/topics/"+topic+"/messages", url.Values{"value": {"x"}, "headers": {"no-equals-sign"}}, http.StatusBadRequest)

	msgs := get(t, srv, "/topics/"+topic+"/messages", 200)
	mustContain(t, "messages", msgs, "hello console", "k-json", "&#34;id&#34;: 7", `<b>trace</b>: <pre class="text">abc</pre>`,
		`<pre class="hex">00000000  00 01 02 ff `, `<pre class="json">`)
	// Newest first by default: the binary record (produced last) comes first.
	if strings.Index(msgs, "k-bin") > strings.Index(msgs, "k-text") {
		t.Error("newest first does not put the last record first")
	}
	oldest := get(t, srv, "/topics/"+topic+"/messages?order=oldest&partition=1", 200)
	if strings.Contains(oldest, "k-text") || strings.Index(oldest, "k-json") > strings.Index(oldest, "k-bin") {
		t.Errorf("partition 1 oldest first: %.3000s", oldest)
	}
	filtered := get(t, srv, "/topics/"+topic+"/messages?q=ABC", 200) // header text, any case
	if !strings.Contains(filtered, "k-json") || strings.Contains(filtered, "k-text") {
		t.Errorf("filter on header text: %.3000s", filtered)
	}
	if body := get(t, srv, "/topics/"+topic+"/messages?partition=1&offset=1&limit=1&order=oldest", 200); !strings.Contains(body, "k-bin") || strings.Contains(body, "k-json") {
		t.Errorf("from partition 1 offset 1: %.3000s", body)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	mustContain(t, "messages after a future time", get(t, srv, "/topics/"+topic+"/messages?time="+url.QueryEscape(future), 200), "no messages")
	get(t, srv, "/topics/"+topic+"/messages?partition=9", http.StatusBadRequest)
	get(t, srv, "/topics/"+topic+"/messages?limit=-1", http.StatusBadRequest)

	post(t, srv, "/topics/"+topic+"/partitions", url.Values{"total": {"3"}}, http.StatusSeeOther)
	post(t, srv, "/topics/"+topic+"/partitions", url.Values{"total": {"2"}}, http.StatusBadRequest) // cannot shrink
	post(t, srv, "/topics/"+topic+"/configs", url.Values{"name": {"retention.ms"}, "value": {"3600000"}}, http.StatusSeeOther)
	post(t, srv, "/topics/"+topic+"/configs", url.Values{"name": {"retention.ms"}, "value": {"soon"}}, http.StatusBadRequest)
	page := get(t, srv, "/topics/"+topic, 200)
	mustContain(t, "topic page", page, `id="partition-count">3<`, `<tr class="override"><td>retention.ms</td><td><code>3600000</code>`,
		`<tr class="default"><td>cleanup.policy</td><td><code>delete</code> <span class="tag">default</span>`)

	// A group reads the three records and stops; two more arrive: lag 2.
	consumeAndStop(t, b.Addr(), "billing", topic, 3)
	post(t, srv, "/topics/"+topic+"/messages", url.Values{"value": {"late-1"}, "partition": {"0"}}, http.StatusSeeOther)
	post(t, srv, "/topics/"+topic+"/messages", url.Values{"value": {"late-2"}, "partition": {"1"}}, http.StatusSeeOther)
	mustContain(t, "group list", get(t, srv, "/groups", 200), `href="/groups/billing"`, "<td>Empty</td>", `<td class="num">2</td></tr>`)
	mustContain(t, "topic page groups", get(t, srv, "/topics/"+topic, 200), `<td><a href="/groups/billing">billing</a></td><td>Empty</td><td class="num">2</td>`)
	group := get(t, srv, "/groups/billing", 200)
	mustContain(t, "group page", group, `id="total-lag">2<`, `id="chart-lag"`)

	// The lag history has samples of lag 2 once the sampler ran.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var data [][]*float64
		if err := json.Unmarshal([]byte(get(t, srv, "/api/series/groups/billing", 200)), &data); err != nil {
			t.Fatal(err)
		}
		if n := len(data[1]); n > 0 && data[1][n-1] != nil && *data[1][n-1] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag history never showed 2: %v", data)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The topic list shows the lag of the topic's groups from that sample.
	list := get(t, srv, "/topics", 200)
	row := list[strings.Index(list, `data-name="orders"`):]
	if row = row[:strings.Index(row, "</tr>")]; !strings.HasSuffix(row, `<td class="num">2</td>`) {
		t.Errorf("topic list row of orders does not end with lag 2: %s", row)
	}

	dry := post(t, srv, "/groups/billing/reset", url.Values{"to": {"earliest"}}, http.StatusOK)
	mustContain(t, "dry run", dry, "Dry run: nothing changed yet", `id="total-lag">2<`)
	post(t, srv, "/groups/billing/reset", url.Values{"to": {"offset"}, "value": {"x"}}, http.StatusConflict)
	post(t, srv, "/groups/billing/reset", url.Values{"to": {"earliest"}, "topic": {topic}, "execute": {"1"}}, http.StatusSeeOther)
	mustContain(t, "group after reset", get(t, srv, "/groups/billing", 200), `id="total-lag">5<`)
	post(t, srv, "/groups/billing/reset", url.Values{"to": {"timestamp"}, "value": {future}, "execute": {"1"}}, http.StatusSeeOther)
	mustContain(t, "group after reset to a future time", get(t, srv, "/groups/billing", 200), `id="total-lag">0<`)

	// While a member is in the group, resets are refused.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	member, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup("billing"), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	for len(strings.Split(get(t, srv, "/groups", 200), "<td>Stable</td>")) < 2 {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		member.PollRecords(pctx, 1) // joins the group (no records to wait for: offsets are at the end)
		pcancel()
		if ctx.Err() != nil {
			t.Fatal("the member never joined")
		}
	}
	refused := post(t, srv, "/groups/billing/reset", url.Values{"to": {"latest"}, "execute": {"1"}}, http.StatusConflict)
	mustContain(t, "reset while active", refused, "active members")
	post(t, srv, "/groups/billing/delete", nil, http.StatusConflict)
	member.Close()
	post(t, srv, "/groups/billing/delete", nil, http.StatusSeeOther)

	mustContain(t, "brokers", get(t, srv, "/brokers", 200), `href="/brokers/0"`, "controller")
	post(t, srv, "/brokers/0/configs", url.Values{"name": {"log.retention.ms"}, "value": {"7200000"}}, http.StatusSeeOther)
	mustContain(t, "broker page", get(t, srv, "/brokers/0", 200), `<td>log.retention.ms</td><td><code>7200000</code>`)
	post(t, srv, "/brokers/0/configs", url.Values{"name": {"log.retention.ms"}, "reset": {"1"}}, http.StatusSeeOther)

	post(t, srv, "/topics/"+topic+"/delete", url.Values{"confirm": {"wrong"}}, http.StatusBadRequest)
	post(t, srv, "/topics/"+topic+"/delete", url.Values{"confirm": {topic}}, http.StatusSeeOther)
	get(t, srv, "/topics/"+topic, http.StatusNotFound)

	var series [][]*float64
	if err := json.Unmarshal([]byte(get(t, srv, "/api/series/overview", 200)), &series); err != nil || len(series) != 4 {
		t.Errorf("overview series: %v %v", series, err)
	}
	mustContain(t, "static asset", get(t, srv, "/static/uplot.iife.min.js", 200), "uPlot")
}

// TestConsoleReadOnlyAuthAndHeaders: read-only hides forms and refuses
// changes; basic auth guards every page; pages carry a strict CSP; a form
// posted from another origin is refused.
func TestConsoleReadOnlyAuthAndHeaders(t *testing.T) {
	b := broker.NewTest(t)
	ro := serve(t, b.Addr(), console.Config{ReadOnly: true})
	body := get(t, ro, "/topics", 200)
	mustContain(t, "read-only topic list", body, "read-only")
	if strings.Contains(body, `id="create-topic"`) {
		t.Error("read-only console shows the create form")
	}
	post(t, ro, "/topics", url.Values{"name": {"t"}}, http.StatusForbidden)

	auth := serve(t, b.Addr(), console.Config{Username: "ops", Password: "s3cret"})
	resp, err := http.Get(auth.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("without credentials: %s", resp.Status)
	}
	for pass, want := range map[string]int{"wrong": http.StatusUnauthorized, "s3cret": http.StatusOK} {
		req, _ := http.NewRequest("GET", auth.URL+"/", nil)
		req.SetBasicAuth("ops", pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("password %q: %s, want %d", pass, resp.Status, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("CSP %q", csp)
		}
	}

	rw := serve(t, b.Addr(), console.Config{})
	req, _ := http.NewRequest("POST", rw.URL+"/topics", strings.NewReader("name=evil"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST: %s", resp.Status)
	}
	if _, err := console.New(context.Background(), console.Config{BootstrapServers: []string{b.Addr()}, Username: "only-user"}); err == nil {
		t.Error("a username without a password was accepted")
	}
}

// TestConsoleOnKfake: the list, topic and group pages work on another Kafka
// implementation (franz-go's kfake), through the same clients.
func TestConsoleOnKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "kf-topic"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("kf-topic"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 4 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("kf-key"), Value: []byte{byte('a' + i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consumeAndStop(t, addr, "kf-group", "kf-topic", 4)
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("kf-key"), Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, addr, console.Config{})
	mustContain(t, "kfake overview", get(t, srv, "/", 200), `id="topics">1<`)
	mustContain(t, "kfake topics", get(t, srv, "/topics", 200), `href="/topics/kf-topic"`, `<td class="num">2</td>`)
	mustContain(t, "kfake topic", get(t, srv, "/topics/kf-topic", 200), `id="partition-count">2<`, `href="/groups/kf-group"`)
	mustContain(t, "kfake groups", get(t, srv, "/groups", 200), `href="/groups/kf-group"`)
	mustContain(t, "kfake group", get(t, srv, "/groups/kf-group", 200), `id="total-lag">1<`)
	mustContain(t, "kfake messages", get(t, srv, "/topics/kf-topic/messages", 200), "kf-key", "after")

	// kfake keeps ACLs: the ACL page lists them.
	adm, err := admin.New(ctx, admin.Config{BootstrapServers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.CreateACLs(ctx, admin.ACL{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "kf-topic", PatternType: kmsg.ACLResourcePatternTypeLiteral,
		Principal: "User:alice", Host: "*", Operation: kmsg.ACLOperationRead, Permission: kmsg.ACLPermissionTypeAllow}); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "kfake acls", get(t, srv, "/acls", 200), `id="acl-table"`, "<td>TOPIC</td><td>kf-topic</td><td>LITERAL</td><td>User:alice</td><td>*</td><td>READ</td><td>ALLOW</td>")
}

// TestConsoleBytesFromMetricsURL: a console outside the broker charts bytes
// in and out from the broker's /metrics endpoint.
func TestConsoleBytesFromMetricsURL(t *testing.T) {
	b := broker.NewTest(t)
	metrics := httptest.NewServer(b.MetricsHandler())
	defer metrics.Close()
	srv := serve(t, b.Addr(), console.Config{MetricsURLs: []string{metrics.URL}})
	mustContain(t, "overview", get(t, srv, "/", 200), `id="chart-bytes"`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("bytes"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 1000)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		var data [][]*float64
		if err := json.Unmarshal([]byte(get(t, srv, "/api/series/overview", 200)), &data); err != nil {
			t.Fatal(err)
		}
		if n := len(data[2]); n > 0 && data[2][n-1] != nil && *data[2][n-1] > 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("bytes in/s never rose: %v", data[2])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsoleBrowsesTransactionalTopic: a range ending in a transaction
// marker (which no consumer returns) still ends, with the records shown (read
// uncommitted, as kafka-console-consumer reads by default).
func TestConsoleBrowsesTransactionalTopic(t *testing.T) {
	b := broker.NewTest(t)
	srv := serve(t, b.Addr(), console.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("txn"), kgo.AllowAutoTopicCreation(),
		kgo.TransactionalID("console-txn"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("txn-record-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	body := get(t, srv, "/topics/txn/messages?order=oldest", 200)
	mustContain(t, "transactional topic", body, "txn-record-0", "txn-record-1")
}

// TestConsoleSeveralClusters: NewMulti lists the clusters and serves each
// one's pages under /clusters/{name}/, with links and redirects that stay
// inside that cluster.
func TestConsoleSeveralClusters(t *testing.T) {
	a, b := broker.NewTest(t), broker.NewTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := console.NewMulti(ctx, []console.Config{
		{Name: "east", BootstrapServers: []string{a.Addr()}},
		{Name: "west", BootstrapServers: []string{b.Addr()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m)
	t.Cleanup(func() {
		srv.Close()
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	mustContain(t, "cluster list", get(t, srv, "/", 200), `href="/clusters/east/"`, `href="/clusters/west/"`)
	if loc := post(t, srv, "/clusters/east/topics", url.Values{"name": {"only-east"}}, http.StatusSeeOther); !strings.HasPrefix(loc, "/clusters/east/topics/only-east?") {
		t.Errorf("create in east redirects to %q", loc)
	}
	east := get(t, srv, "/clusters/east/topics", 200)
	mustContain(t, "east's topics", east, `href="/clusters/east/topics/only-east"`, `id="cluster-name">east<`, `src="/clusters/east/static/console.js"`)
	if west := get(t, srv, "/clusters/west/topics", 200); strings.Contains(west, "only-east") {
		t.Error("west lists east's topic")
	}
	mustContain(t, "west overview", get(t, srv, "/clusters/west/", 200), b.ClusterID())
	mustContain(t, "east's script", get(t, srv, "/clusters/east/static/console.js", 200), "drawChart")
	if _, err := console.NewMulti(ctx, []console.Config{{Name: "x", BootstrapServers: []string{a.Addr()}}, {Name: "x", BootstrapServers: []string{b.Addr()}}}); err == nil {
		t.Error("two clusters named x were accepted")
	}
}
