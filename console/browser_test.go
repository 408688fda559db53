package console_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkit/kafkit/broker"
	"github.com/kafkit/kafkit/console"
)

const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium with a fresh profile and the flags that
// keep it off the network (the machine's closed network refuses its
// background connections), or skips the test when Chromium is missing.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser tests need Debian's chromium at %s (apt-get install chromium): %v", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		// Chromium makes its singleton socket's directory under TMPDIR
		// and removes it only on a clean exit, which a stopped allocator
		// is not: one org.chromium.Chromium.* left in /tmp per test.
		chromedp.Env("TMPDIR="+t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc() // stops Chromium and waits for it
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// screenshot saves the page to the test's temp dir (and to
// $KAFKIT_CONSOLE_SCREENSHOTS, which is how docs/ gets its pictures) and
// fails if it is blank: a rendered page has many colours.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if n := colours(img); n < 16 {
		t.Errorf("screenshot %s looks blank: %d colours", name, n)
	}
	dirs := []string{t.TempDir()}
	if d := os.Getenv("KAFKIT_CONSOLE_SCREENSHOTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "console-"+name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func colours(img image.Image) int {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	return len(seen)
}

// chartPixels counts the pixels of the chart's canvas drawn in its first
// series' colour (#2563eb): the line uPlot draws from the data, not the
// axes or grid.
const chartPixels = `(() => {
  const c = document.querySelector(%q + " canvas");
  if (!c) return 0;
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (Math.abs(d[i] - 37) < 24 && Math.abs(d[i+1] - 99) < 24 && Math.abs(d[i+2] - 235) < 24 && d[i+3] > 200) n++;
  }
  return n;
})()`

// waitChart waits until the chart has drawn at least minPoints samples and
// its line is on the canvas.
func waitChart(t *testing.T, ctx context.Context, sel string, minPoints int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), "data-points"))
		if err != nil {
			t.Fatalf("chart %s: %v", sel, err)
		}
		points := attr.Value
		pixels, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(chartPixels, sel)))
		if err != nil {
			t.Fatalf("chart %s: %v", sel, err)
		}
		if n, _ := strconv.Atoi(points); n >= minPoints && pixels > 50 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("chart %s: %s points, %d pixels of its line", sel, points, pixels)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		t.Fatalf("%s: %v", sel, err)
	}
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("%s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// TestConsoleInBrowser opens the console in headless Chromium after records
// were produced and a group stopped consuming: the overview's throughput
// chart, the topic's partition count, the record's key and value in the
// message browser, and the group's lag and its lag chart are what a person
// sees; a screenshot of each page is kept and checked to be non-blank.
func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	b := broker.NewTest(t)
	srv := serve(t, b.Addr(), console.Config{Metrics: b.Metrics(), SampleInterval: 250 * time.Millisecond})
	const topic, group = "payments", "ledger"
	pctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	post(t, srv, "/topics", url.Values{"name": {topic}, "partitions": {"3"}}, http.StatusSeeOther)
	produce := func(n int, from int) {
		for i := range n {
			r := &kgo.Record{Key: []byte(fmt.Sprintf("customer-%d", from+i)),
				Value: []byte(fmt.Sprintf(`{"amount":%d,"currency":"EUR"}`, 10*(from+i)))}
			if err := cl.ProduceSync(pctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(30, 0)
	consumeAndStop(t, b.Addr(), group, topic, 30)
	produce(12, 30)

	// Keep a trickle of traffic so the throughput chart has something to show.
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			cl.Produce(pctx, &kgo.Record{Topic: "clicks", Value: []byte(strings.Repeat("x", 200+i%100))}, nil)
		}
	}()
	defer func() { close(stop); <-trickled }()

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#cluster-id"); got != b.ClusterID() {
		t.Errorf("overview cluster id %q, want %q", got, b.ClusterID())
	}
	waitChart(t, ctx, "#chart-messages", 3)
	waitChart(t, ctx, "#chart-bytes", 3)
	screenshot(t, ctx, "overview")

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/topics")); err != nil {
		t.Fatal(err)
	}
	// Typing in the search box filters the list in place.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#topic-search"), "pay")); err != nil {
		t.Fatal(err)
	}
	visible, err := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll("#topic-table tbody tr")].filter(r => !r.hidden).length`))
	if err != nil {
		t.Fatal(err)
	}
	if visible != 1 {
		t.Errorf("after typing 'pay', %d topics are listed, want 1", visible)
	}
	screenshot(t, ctx, "topics")

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/topics/"+topic)); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#partition-count"); got != "3" {
		t.Errorf("topic page shows %q partitions, want 3", got)
	}
	if got := text(t, ctx, "#topic-groups tbody"); !strings.Contains(got, group) || !strings.Contains(got, "12") {
		t.Errorf("topic page's groups: %q, want %s with lag 12", got, group)
	}
	screenshot(t, ctx, "topic")

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/topics/"+topic+"/messages?q=customer-41")); err != nil {
		t.Fatal(err)
	}
	msgs := text(t, ctx, "#messages tbody")
	if !strings.Contains(msgs, "customer-41") || !strings.Contains(msgs, `"amount": 410`) || strings.Contains(msgs, "customer-40") {
		t.Errorf("message browser filtered on customer-41 shows:\n%s", msgs)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/topics/"+topic+"/messages?limit=8")); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "messages")

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/groups/"+group)); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#total-lag"); got != "12" {
		t.Errorf("group page shows lag %q, want 12", got)
	}
	waitChart(t, ctx, "#chart-lag", 3)
	// More records arrive while the page is open: the chart follows the lag
	// up without a reload.
	produce(8, 42)
	deadline := time.Now().Add(30 * time.Second)
	for {
		attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#chart-lag"), "data-last"))
		if err != nil {
			t.Fatal(err)
		}
		if attr.Value == "20" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lag chart's last value is %q, want 20", attr.Value)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Reloaded, the page's tables agree with the chart.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/groups/"+group)); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#total-lag"); got != "20" {
		t.Errorf("reloaded group page shows lag %q, want 20", got)
	}
	waitChart(t, ctx, "#chart-lag", 3)
	screenshot(t, ctx, "group")
}
