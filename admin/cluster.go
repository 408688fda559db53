package admin

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/kafkit/kafkit"
	"github.com/kafkit/kafkit/internal/client"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Broker is one broker of the cluster.
type Broker struct {
	ID   int32
	Host string
	Port int32
	Rack string `json:",omitempty"`
}

// Cluster describes the cluster: its id, controller and brokers (sorted by
// id).
type Cluster struct {
	ClusterID    string
	ControllerID int32 // -1 if unknown
	Brokers      []Broker
}

// DescribeCluster returns the cluster's id, controller and brokers from
// fresh metadata; with BootstrapControllers, the controllers and the
// active one.
func (c *Client) DescribeCluster(ctx context.Context) (Cluster, error) {
	if len(c.cfg.BootstrapControllers) > 0 {
		id, active, controllers, err := c.cl.Controllers(ctx)
		if err != nil {
			return Cluster{}, err
		}
		out := Cluster{ClusterID: id, ControllerID: active}
		for _, id := range slices.Sorted(maps.Keys(controllers)) {
			b := controllers[id]
			out.Brokers = append(out.Brokers, Broker{ID: b.ID, Host: b.Host, Port: b.Port, Rack: b.Rack})
		}
		return out, nil
	}
	md, err := c.metadata(ctx)
	if err != nil {
		return Cluster{}, err
	}
	out := Cluster{ClusterID: md.ClusterID, ControllerID: md.ControllerID}
	for _, id := range slices.Sorted(maps.Keys(md.Brokers)) {
		b := md.Brokers[id]
		out.Brokers = append(out.Brokers, Broker{ID: b.ID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	return out, nil
}

// APIVersion is the range of versions of one API (request key) that a
// broker supports.
type APIVersion struct {
	Key      int16
	Min, Max int16
}

// APIVersions asks one broker (an ID from DescribeCluster) which APIs and
// versions it supports, in the order it answers.
func (c *Client) APIVersions(ctx context.Context, broker int32) ([]APIVersion, error) {
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "kafkit", "1"
	kresp, err := c.cl.RequestBroker(ctx, broker, req)
	if err != nil {
		return nil, err
	}
	resp := kresp.(*kmsg.ApiVersionsResponse)
	if err := kafkaErr("api versions", fmt.Sprintf("broker %d", broker), resp.ErrorCode, nil); err != nil {
		return nil, err
	}
	out := make([]APIVersion, len(resp.ApiKeys))
	for i, k := range resp.ApiKeys {
		out[i] = APIVersion{Key: k.ApiKey, Min: k.MinVersion, Max: k.MaxVersion}
	}
	return out, nil
}

// ElectLeaders asks the controller to elect leaders (kmsg.ElectionType:
// 0 preferred, 1 unclean) for partitions, or for every partition when none
// are named. The result has each partition's outcome: nil when a leader was
// elected, kerr.ElectionNotNeeded when the right one already leads.
func (c *Client) ElectLeaders(ctx context.Context, electionType int8, partitions ...kafkit.TopicPartition) (map[kafkit.TopicPartition]error, error) {
	req := kmsg.NewPtrElectLeadersRequest()
	req.ElectionType, req.TimeoutMillis = electionType, c.timeoutMillis()
	if len(partitions) > 0 {
		for t, ps := range client.PartitionsByTopic(partitions) {
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic, rt.Partitions = t, ps
			req.Topics = append(req.Topics, rt)
		}
	} else {
		req.Topics = nil // null: every partition
	}
	resp, err := askController(ctx, c, "elect leaders", req, func(r *kmsg.ElectLeadersResponse) (int16, *string) { return r.ErrorCode, nil })
	if err != nil {
		return nil, err
	}
	out := make(map[kafkit.TopicPartition]error)
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			tp := kafkit.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			out[tp] = kafkaErr("elect leader", partitionName(tp), rp.ErrorCode, rp.ErrorMessage)
		}
	}
	return out, nil
}

// Reassignment is a partition reassignment in progress.
type Reassignment struct {
	Replicas, Adding, Removing []int32
}

// AlterPartitionReassignments starts moving each partition to its target
// replicas (the first the preferred leader), or cancels the partition's
// reassignment when its target is nil. The result has each partition's
// outcome.
func (c *Client) AlterPartitionReassignments(ctx context.Context, targets map[kafkit.TopicPartition][]int32) (map[kafkit.TopicPartition]error, error) {
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.TimeoutMillis = c.timeoutMillis()
	tps := slices.SortedFunc(maps.Keys(targets), compareTP)
	for t, ps := range client.PartitionsByTopic(tps) {
		rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
		rt.Topic = t
		for _, p := range ps {
			rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
			rp.Partition, rp.Replicas = p, targets[kafkit.TopicPartition{Topic: t, Partition: p}]
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := askController(ctx, c, "alter partition reassignments", req,
		func(r *kmsg.AlterPartitionAssignmentsResponse) (int16, *string) { return r.ErrorCode, r.ErrorMessage })
	if err != nil {
		return nil, err
	}
	out := make(map[kafkit.TopicPartition]error)
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			tp := kafkit.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			out[tp] = kafkaErr("reassign", partitionName(tp), rp.ErrorCode, rp.ErrorMessage)
		}
	}
	return out, nil
}

// ListPartitionReassignments returns the reassignments in progress, of
// partitions or of every partition when none are named.
func (c *Client) ListPartitionReassignments(ctx context.Context, partitions ...kafkit.TopicPartition) (map[kafkit.TopicPartition]Reassignment, error) {
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	req.TimeoutMillis = c.timeoutMillis()
	for t, ps := range client.PartitionsByTopic(partitions) {
		rt := kmsg.NewListPartitionReassignmentsRequestTopic()
		rt.Topic, rt.Partitions = t, ps
		req.Topics = append(req.Topics, rt)
	}
	resp, err := askController(ctx, c, "list partition reassignments", req,
		func(r *kmsg.ListPartitionReassignmentsResponse) (int16, *string) { return r.ErrorCode, r.ErrorMessage })
	if err != nil {
		return nil, err
	}
	out := make(map[kafkit.TopicPartition]Reassignment)
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			out[kafkit.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}] = Reassignment{rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas}
		}
	}
	return out, nil
}

// askController sends req to the controller, retrying what is retriable,
// and fails with the response's top-level error (top reads it).
func askController[R kmsg.Response](ctx context.Context, c *Client, op string, req kmsg.Request, top func(R) (int16, *string)) (R, error) {
	return ask(ctx, c, c.toController, op, req, top)
}

// ask is askController through send (c.cl.Request for any broker).
func ask[R kmsg.Response](ctx context.Context, c *Client, send func(context.Context, kmsg.Request) (kmsg.Response, error), op string, req kmsg.Request, top func(R) (int16, *string)) (R, error) {
	var resp R
	err := c.retry(ctx, func() error {
		kresp, err := send(ctx, req)
		if err != nil {
			return err
		}
		resp = kresp.(R)
		code, msg := top(resp)
		return kafkaErr(op, "cluster", code, msg)
	})
	return resp, err
}
