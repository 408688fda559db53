//go:build unix

package integration

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/recordbatch"
)

// ISR (issue 12): a follower paused with SIGSTOP past
// replica.lag.time.max.ms (2 s here) leaves the ISR, as Metadata shows;
// resumed, it catches up and rejoins. With two followers paused, acks=all
// gets NOT_ENOUGH_REPLICAS (min.insync.replicas=2) and acks=1 still
// works. Five nodes, so that the metadata quorum outlives two paused
// ones; the session timeout is longer than the pauses, so that the
// followers leave through the leader's lag check, not through fencing.
func TestClusterISRPausedFollowers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five broker processes")
	}
	pc := startClusterWith(t, 5, clusterOptions{props: "replica.lag.time.max.ms=2000\nbroker.session.timeout.ms=20000\nmin.insync.replicas=2\nreplica.fetch.backoff.ms=100\n"})
	md := pc.metadata(5)
	var others []int32 // nodes other than the active controller
	for id := int32(1); id <= 5; id++ {
		if id != md.ControllerID {
			others = append(others, id)
		}
	}
	leader, f1, f2 := others[0], others[1], others[2]
	cl, err := kgo.NewClient(kgo.SeedBrokers(pc.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	create := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "isr", -1, -1
	rt.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{leader, f1, f2}}}
	create.Topics = append(create.Topics, rt)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := create.RequestWith(context.Background(), cl)
		if err == nil && resp.Topics[0].ErrorCode == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("creating the topic: %v %v", err, resp)
		}
	}
	inISR := func(want ...int32) func(kmsg.MetadataResponseTopicPartition) bool {
		return func(p kmsg.MetadataResponseTopicPartition) bool {
			isr := slices.Sorted(slices.Values(p.ISR))
			return p.Leader == leader && slices.Equal(isr, slices.Sorted(slices.Values(want)))
		}
	}
	pc.awaitPartitionOn(leader, "the full ISR on the leader", "isr", 0, 20*time.Second, inISR(leader, f1, f2))

	produce := func(acks int16) int16 {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks, req.TimeoutMillis = acks, 5000
		prt := kmsg.NewProduceRequestTopic()
		prt.Topic = "isr"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = oneRecordBatch(t, "v")
		prt.Partitions = append(prt.Partitions, rp)
		req.Topics = append(req.Topics, prt)
		return rawRequest(t, pc.addrs[leader-1], req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	pause := func(id int32) { pc.running[id-1].cmd.Process.Signal(syscall.SIGSTOP) }
	resume := func(id int32) { pc.running[id-1].cmd.Process.Signal(syscall.SIGCONT) }
	t.Cleanup(func() {
		resume(f1)
		resume(f2)
	})
	if code := produce(-1); code != 0 {
		t.Fatalf("acks=all with the full ISR: %v", kerr.ErrorForCode(code))
	}

	// A follower lags only behind records it lacks: one record after each
	// pause.
	pause(f1)
	paused := time.Now()
	if code := produce(1); code != 0 {
		t.Fatalf("acks=1: %v", kerr.ErrorForCode(code))
	}
	pc.awaitPartitionOn(leader, "the paused follower out of the ISR", "isr", 0, 30*time.Second, inISR(leader, f2))
	if took := time.Since(paused); took < 2*time.Second {
		t.Errorf("the follower left the ISR %v after its pause, before replica.lag.time.max.ms", took)
	}
	t.Logf("follower %d left the ISR %v after SIGSTOP", f1, time.Since(paused).Round(time.Millisecond))
	resume(f1)
	pc.awaitPartitionOn(leader, "the resumed follower back in the ISR", "isr", 0, 30*time.Second, inISR(leader, f1, f2))

	pause(f1)
	pause(f2)
	if code := produce(1); code != 0 {
		t.Fatalf("acks=1: %v", kerr.ErrorForCode(code))
	}
	pc.awaitPartitionOn(leader, "the ISR down to the leader", "isr", 0, 15*time.Second, inISR(leader))
	if code := produce(-1); code != kerr.NotEnoughReplicas.Code {
		t.Errorf("acks=all with two followers paused: %v, want NOT_ENOUGH_REPLICAS", kerr.ErrorForCode(code))
	}
	if code := produce(1); code != 0 {
		t.Errorf("acks=1 with two followers paused: %v", kerr.ErrorForCode(code))
	}
	resume(f1)
	resume(f2)
	pc.awaitPartitionOn(leader, "both followers back in the ISR", "isr", 0, 15*time.Second, inISR(leader, f1, f2))
	if code := produce(-1); code != 0 {
		t.Errorf("acks=all once the followers are back: %v", kerr.ErrorForCode(code))
	}
}

// oneRecordBatch is a record batch of one record without a producer id.
func oneRecordBatch(t *testing.T, value string) []byte {
	bl := recordbatch.NewBuilder(recordbatch.Options{}, 0)
	bl.Append(time.Now().UnixMilli(), nil, []byte(value), nil)
	b, err := bl.Finish(recordbatch.NoProducer())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawRequest sends req, at the version it has, on a connection of its own
// (kgo rewrites a raw Produce's acks to its own).
func rawRequest(t *testing.T, addr string, req kmsg.Request) kmsg.Response {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := nc.Write(kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(nc, body); err != nil {
		t.Fatal(err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	body = body[4:]
	if resp.IsFlexible() {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	return resp
}
