package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/admin"
)

// pageTemplate is the layout plus one page's content.
type pageTemplate = template.Template

var funcs = template.FuncMap{
	"bytes": humanBytes,
	"rate": func(r float64) string {
		if math.IsNaN(r) {
			return "–"
		}
		return strconv.FormatFloat(r, 'f', 1, 64)
	},
	"join": func(ids []int32) string {
		s := make([]string, len(ids))
		for i, id := range ids {
			s[i] = strconv.Itoa(int(id))
		}
		return strings.Join(s, ",")
	},
	"sub": func(a, b int64) int64 { return a - b },
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
}

func parsePages() (map[string]*pageTemplate, error) {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*pageTemplate{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		pages[base] = t
	}
	return pages, nil
}

// page is what every template gets.
type page struct {
	Title    string
	Nav      string
	ReadOnly bool
	Notice   string // the result of the action that led here
	Base     string // Config.BasePath, before every link
	Cluster  string // Config.Name
	Multi    bool   // one of several clusters: link back to the list
	Data     any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) error {
	return c.execute(w, status, name, page{Title: title, Nav: name, ReadOnly: c.cfg.ReadOnly,
		Notice: r.URL.Query().Get("done"), Base: c.cfg.BasePath, Cluster: c.cfg.Name, Multi: c.multi, Data: data})
}

// execute renders a page into a buffer first, so a template error still
// leaves the response unwritten.
func (c *Console) execute(w http.ResponseWriter, status int, name string, p page) error {
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, p); err != nil {
		c.log.Error("console: rendering", "page", name, "err", err)
		return statusError{http.StatusInternalServerError, fmt.Errorf("rendering %s: %w", name, err)}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
	return nil
}

// redirectDone redirects after a successful action, the page showing what was done.
func (c *Console) redirectDone(w http.ResponseWriter, r *http.Request, to, what string) {
	http.Redirect(w, r, c.cfg.BasePath+to+"?done="+url.QueryEscape(what), http.StatusSeeOther)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

func humanBytes(n int64) string {
	if n < 0 {
		return "–"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// clusterState is what the overview, topic list and broker pages share.
type clusterState struct {
	Cluster     admin.Cluster
	Topics      []admin.TopicDescription
	Partitions  int
	UnderRepl   int
	Offline     int
	LedBy       map[int32]int
	ReplicasOn  map[int32]int
	Controller  int32
	BrokerCount int
}

func (c *Console) clusterState(ctx context.Context) (clusterState, error) {
	cl, err := c.admin.DescribeCluster(ctx)
	if err != nil {
		return clusterState{}, err
	}
	topics, err := c.admin.DescribeTopics(ctx)
	if err != nil {
		return clusterState{}, err
	}
	s := clusterState{Cluster: cl, Topics: topics, LedBy: map[int32]int{}, ReplicasOn: map[int32]int{},
		Controller: cl.ControllerID, BrokerCount: len(cl.Brokers)}
	for _, t := range topics {
		for _, p := range t.Partitions {
			s.Partitions++
			if p.Leader < 0 {
				s.Offline++
			} else {
				s.LedBy[p.Leader]++
			}
			if len(p.ISR) < len(p.Replicas) {
				s.UnderRepl++
			}
			for _, r := range p.Replicas {
				s.ReplicasOn[r]++
			}
		}
	}
	return s, nil
}

func (c *Console) overview(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	s, err := c.clusterState(ctx)
	if err != nil {
		return err
	}
	groups, err := c.admin.ListGroups(ctx)
	if err != nil {
		return err
	}
	return c.render(w, r, http.StatusOK, "overview", "Overview", struct {
		clusterState
		Groups     int
		HasMetrics bool
	}{s, len(groups), c.cfg.Metrics != nil})
}

func (c *Console) overviewSeries(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, c.sampler.overviewData())
}

func (c *Console) topicSeries(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, c.sampler.topicData(r.PathValue("topic")))
}

func (c *Console) groupSeries(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, c.sampler.groupData(r.PathValue("group")))
}

// topicRow is one line of the topic list.
type topicRow struct {
	Name        string
	Internal    bool
	Partitions  int
	Replication int
	Size        int64
	Messages    int64
	Rate        float64
	Lag         int64 // summed over the topic's groups; -1: none
}

func (c *Console) topicList(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	internal := r.URL.Query().Get("internal") != ""
	topics, err := c.admin.DescribeTopics(ctx)
	if err != nil {
		return err
	}
	var tps []kafkit.TopicPartition
	var rows []topicRow
	for _, t := range topics {
		if t.Internal && !internal || q != "" && !strings.Contains(strings.ToLower(t.Name), strings.ToLower(q)) {
			continue
		}
		rows = append(rows, topicRow{Name: t.Name, Internal: t.Internal, Partitions: len(t.Partitions),
			Replication: t.ReplicationFactor(), Rate: c.sampler.topicRate(t.Name), Lag: c.sampler.lagOf(t.Name)})
		for _, p := range t.Partitions {
			tps = append(tps, kafkit.TopicPartition{Topic: t.Name, Partition: p.Partition})
		}
	}
	// Sizes and counts are best effort: a broker that does not answer
	// leaves them unknown rather than failing the list.
	sizes := map[string]int64{}
	if dirs, err := c.admin.DescribeLogDirs(ctx, nil, tps...); err == nil {
		for _, d := range dirs {
			for tp, ri := range d.Replicas {
				if !ri.IsFuture {
					sizes[tp.Topic] += ri.Size
				}
			}
		}
	}
	counts := c.messageCounts(ctx, tps)
	for i := range rows {
		rows[i].Size, rows[i].Messages = -1, -1
		if s, ok := sizes[rows[i].Name]; ok {
			rows[i].Size = s
		}
		if n, ok := counts[rows[i].Name]; ok {
			rows[i].Messages = n
		}
	}
	return c.render(w, r, http.StatusOK, "topics", "Topics", struct {
		Query    string
		Internal bool
		Topics   []topicRow
	}{q, internal, rows})
}

// messageCounts is high watermark minus log start, summed per topic.
func (c *Console) messageCounts(ctx context.Context, tps []kafkit.TopicPartition) map[string]int64 {
	starts, err1 := c.admin.ListOffsets(ctx, kafkit.OffsetEarliest, tps...)
	ends, err2 := c.admin.ListOffsets(ctx, kafkit.OffsetLatest, tps...)
	out := map[string]int64{}
	if err1 != nil || err2 != nil {
		return out
	}
	for _, tp := range tps {
		out[tp.Topic] += ends[tp].Offset - starts[tp].Offset
	}
	return out
}

// partitionRow is one partition on the topic page.
type partitionRow struct {
	admin.PartitionInfo
	Start, End int64
}

// topicGroup is a group that committed offsets for the topic.
type topicGroup struct {
	Group string
	State string
	Lag   int64
}

func (c *Console) topicPage(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("topic")
	ds, err := c.admin.DescribeTopics(ctx, name)
	if err != nil {
		return notFound(err)
	}
	t := ds[0]
	tps := make([]kafkit.TopicPartition, len(t.Partitions))
	for i, p := range t.Partitions {
		tps[i] = kafkit.TopicPartition{Topic: name, Partition: p.Partition}
	}
	starts, err := c.admin.ListOffsets(ctx, kafkit.OffsetEarliest, tps...)
	if err != nil {
		return err
	}
	ends, err := c.admin.ListOffsets(ctx, kafkit.OffsetLatest, tps...)
	if err != nil {
		return err
	}
	rows := make([]partitionRow, len(t.Partitions))
	for i, p := range t.Partitions {
		rows[i] = partitionRow{PartitionInfo: p, Start: starts[tps[i]].Offset, End: ends[tps[i]].Offset}
	}
	cfgs, err := c.admin.DescribeConfigs(ctx, admin.ConfigResource{Type: admin.TopicResource, Name: name})
	if err != nil {
		return err
	}
	var groups []topicGroup
	if gl, err := c.admin.ListGroups(ctx); err == nil {
		for _, g := range gl {
			lag, err := c.admin.Lag(ctx, g.Group)
			if err != nil {
				continue
			}
			tg := topicGroup{Group: g.Group, State: lag.State}
			found := false
			for _, p := range lag.Partitions {
				if p.Topic == name {
					found = true
					tg.Lag += max(p.Lag, 0)
				}
			}
			if found {
				groups = append(groups, tg)
			}
		}
	}
	return c.render(w, r, http.StatusOK, "topic", name, struct {
		Topic      admin.TopicDescription
		Partitions []partitionRow
		Configs    []admin.ConfigEntry
		Groups     []topicGroup
	}{t, rows, cfgs[0].Entries, groups})
}

func (c *Console) createTopic(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimSpace(r.FormValue("name"))
	parts, err1 := formInt(r, "partitions", -1)
	rf, err2 := formInt(r, "replication", -1)
	if name == "" || err1 != nil || err2 != nil {
		return badRequest(fmt.Errorf("create topic: a name and whole numbers of partitions and replicas are needed"))
	}
	if _, err := c.admin.CreateTopics(ctx, false, admin.NewTopic{Name: name, Partitions: int32(parts), ReplicationFactor: int16(rf)}); err != nil {
		return badRequest(err)
	}
	c.redirectDone(w, r, "/topics/"+url.PathEscape(name), "created topic "+name)
	return nil
}

// formInt reads an optional integer field (def when empty).
func formInt(r *http.Request, key string, def int64) (int64, error) {
	v := strings.TrimSpace(r.FormValue(key))
	if v == "" {
		return def, nil
	}
	return strconv.ParseInt(v, 10, 64)
}

func (c *Console) deleteTopic(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("topic")
	if r.FormValue("confirm") != name {
		return badRequest(fmt.Errorf("delete topic: type the topic's name %q to confirm", name))
	}
	if err := c.admin.DeleteTopics(ctx, name); err != nil {
		return badRequest(err)
	}
	c.redirectDone(w, r, "/topics", "deleted topic "+name)
	return nil
}

func (c *Console) addPartitions(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("topic")
	total, err := formInt(r, "total", 0)
	if err != nil || total <= 0 {
		return badRequest(fmt.Errorf("add partitions: the new total must be a positive number"))
	}
	if err := c.admin.CreatePartitions(ctx, false, map[string]int32{name: int32(total)}); err != nil {
		return badRequest(err)
	}
	c.dropProducer() // it would refuse the new partitions until its metadata ages out
	c.redirectDone(w, r, "/topics/"+url.PathEscape(name), fmt.Sprintf("%s now has %d partitions", name, total))
	return nil
}

// alterConfig sets a config, or with an empty value (or "reset") returns
// it to its default, as kafka-configs --alter --add-config / --delete-config.
func (c *Console) alterConfig(ctx context.Context, w http.ResponseWriter, r *http.Request, res admin.ConfigResource, back string) error {
	key := strings.TrimSpace(r.FormValue("name"))
	op := admin.AlterOp{Name: key, Op: admin.OpSet, Value: r.FormValue("value")}
	if r.FormValue("reset") != "" {
		op = admin.AlterOp{Name: key, Op: admin.OpDelete}
	}
	if key == "" {
		return badRequest(fmt.Errorf("alter config: no config name"))
	}
	if err := c.admin.IncrementalAlterConfigs(ctx, res, []admin.AlterOp{op}, false); err != nil {
		return badRequest(err)
	}
	what := "set " + key + "=" + op.Value
	if op.Op == admin.OpDelete {
		what = "reset " + key + " to its default"
	}
	c.redirectDone(w, r, back, what)
	return nil
}

func (c *Console) alterTopicConfig(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("topic")
	return c.alterConfig(ctx, w, r, admin.ConfigResource{Type: admin.TopicResource, Name: name}, "/topics/"+url.PathEscape(name))
}

func (c *Console) alterBrokerConfig(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	return c.alterConfig(ctx, w, r, admin.ConfigResource{Type: admin.BrokerResource, Name: id}, "/brokers/"+url.PathEscape(id))
}

// groupRow is one line of the group list.
type groupRow struct {
	admin.GroupDescription
	Lag int64 // -1 when unknown
}

func (c *Console) groupList(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	gl, err := c.admin.ListGroups(ctx)
	if err != nil {
		return err
	}
	names := make([]string, len(gl))
	for i, g := range gl {
		names[i] = g.Group
	}
	var rows []groupRow
	if len(names) > 0 {
		ds, err := c.admin.DescribeGroups(ctx, names...)
		if err != nil && len(ds) == 0 {
			return err
		}
		for _, d := range ds {
			row := groupRow{GroupDescription: d, Lag: -1}
			if lag, err := c.admin.Lag(ctx, d.Group); err == nil {
				row.Lag = lag.Total
			}
			rows = append(rows, row)
		}
	}
	return c.render(w, r, http.StatusOK, "groups", "Consumer groups", rows)
}

// groupView is the group page's data; Plan is a reset's result.
type groupView struct {
	Desc   admin.GroupDescription
	Lag    admin.GroupLag
	Topics []string
	Plan   []admin.OffsetReset
	Dry    bool
	Err    string
}

func (c *Console) groupView(ctx context.Context, group string) (groupView, error) {
	ds, err := c.admin.DescribeGroups(ctx, group)
	if err != nil {
		return groupView{}, err
	}
	lag, err := c.admin.Lag(ctx, group)
	if err != nil {
		return groupView{}, err
	}
	v := groupView{Desc: ds[0], Lag: lag}
	for _, p := range lag.Partitions {
		if !slices.Contains(v.Topics, p.Topic) {
			v.Topics = append(v.Topics, p.Topic)
		}
	}
	return v, nil
}

func (c *Console) groupPage(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	v, err := c.groupView(ctx, r.PathValue("group"))
	if err != nil {
		return err
	}
	return c.render(w, r, http.StatusOK, "group", v.Desc.Group, v)
}

// resetOffsets plans (dry run) or applies an offset reset of the group's
// partitions (of one topic if chosen), refused while the group has members.
func (c *Console) resetOffsets(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	group := r.PathValue("group")
	v, err := c.groupView(ctx, group)
	if err != nil {
		return err
	}
	spec, err := resetSpec(r)
	var plan []admin.OffsetReset
	if err == nil {
		var tps []kafkit.TopicPartition
		topic := r.FormValue("topic")
		for _, p := range v.Lag.Partitions {
			if topic == "" || p.Topic == topic {
				tps = append(tps, p.TopicPartition)
			}
		}
		execute := r.FormValue("execute") != ""
		plan, err = c.admin.ResetOffsets(ctx, group, spec, tps, execute)
		if err == nil && execute {
			c.redirectDone(w, r, "/groups/"+url.PathEscape(group), fmt.Sprintf("reset %d partitions", len(plan)))
			return nil
		}
	}
	status := http.StatusOK
	if err != nil {
		status = http.StatusConflict
		v.Err = err.Error()
	}
	v.Plan, v.Dry = plan, err == nil
	return c.render(w, r, status, "group", group, v)
}

func resetSpec(r *http.Request) (admin.ResetSpec, error) {
	switch r.FormValue("to") {
	case "earliest":
		return admin.ResetSpec{Kind: admin.ResetToEarliest}, nil
	case "latest":
		return admin.ResetSpec{Kind: admin.ResetToLatest}, nil
	case "offset":
		off, err := strconv.ParseInt(strings.TrimSpace(r.FormValue("value")), 10, 64)
		if err != nil {
			return admin.ResetSpec{}, fmt.Errorf("reset to offset: %q is not an offset", r.FormValue("value"))
		}
		return admin.ResetSpec{Kind: admin.ResetToOffset, Offset: off}, nil
	case "timestamp":
		t, err := parseTime(r.FormValue("value"))
		if err != nil {
			return admin.ResetSpec{}, fmt.Errorf("reset to timestamp: %w", err)
		}
		return admin.ResetSpec{Kind: admin.ResetToDatetime, Time: t}, nil
	}
	return admin.ResetSpec{}, fmt.Errorf("reset: choose earliest, latest, offset or timestamp")
}

// parseTime accepts RFC 3339, the browser's datetime-local (UTC) or
// milliseconds since the epoch.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (RFC 3339, 2006-01-02T15:04 UTC, or epoch milliseconds)", s)
}

func (c *Console) deleteGroup(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	group := r.PathValue("group")
	if err := c.admin.DeleteGroups(ctx, group); err != nil {
		return conflict(err)
	}
	c.redirectDone(w, r, "/groups", "deleted group "+group)
	return nil
}

func (c *Console) brokerList(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	s, err := c.clusterState(ctx)
	if err != nil {
		return err
	}
	return c.render(w, r, http.StatusOK, "brokers", "Brokers", s)
}

func (c *Console) brokerPage(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	cfgs, err := c.admin.DescribeConfigs(ctx, admin.ConfigResource{Type: admin.BrokerResource, Name: id})
	if err != nil {
		return notFound(err)
	}
	return c.render(w, r, http.StatusOK, "broker", "Broker "+id, struct {
		ID      string
		Configs []admin.ConfigEntry
	}{id, cfgs[0].Entries})
}
