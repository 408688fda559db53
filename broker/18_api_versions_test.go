package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// KAFKA-18659: ApiVersions lists Produce from v0 so that librdkafka
// compresses, but a Produce v0-2 is closed like any unsupported version.
func TestApiVersionsListsProduceFromV0(t *testing.T) {
	b := NewTest(t)
	for _, v := range []int16{0, apiVersionsVersions.max} {
		c := dial(t, b)
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(v)
		resp := c.roundTrip(req).(*kmsg.ApiVersionsResponse)
		var produce []kmsg.ApiVersionsResponseApiKey
		for _, k := range resp.ApiKeys {
			if k.ApiKey == int16(kmsg.Produce) {
				produce = append(produce, k)
			}
		}
		if resp.ErrorCode != 0 || len(produce) != 1 || produce[0].MinVersion != 0 || produce[0].MaxVersion != produceVersions.max {
			t.Fatalf("ApiVersions v%d: error %d, Produce %+v, want one entry 0-%d", v, resp.ErrorCode, produce, produceVersions.max)
		}

		// What a client could pick from that answer and Kafka refuses:
		// the connection is closed, as Kafka's SocketServer closes it
		// (InvalidRequestException for a version not enabled).
		prod := kmsg.NewPtrProduceRequest()
		prod.SetVersion(2)
		prod.Acks, prod.TimeoutMillis = 1, 1000
		prod.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0}}}}
		c.send(prod)
		c.expectClosed()
	}
	for v := range int16(produceVersions.min) {
		c := dial(t, b)
		prod := kmsg.NewPtrProduceRequest()
		prod.SetVersion(v)
		prod.Acks, prod.TimeoutMillis = 1, 1000
		c.send(prod)
		c.expectClosed()
	}

	// v3, the oldest served, is answered on the same kind of connection.
	c := dial(t, b)
	prod := kmsg.NewPtrProduceRequest()
	prod.SetVersion(produceVersions.min)
	prod.Acks, prod.TimeoutMillis = 1, 1000
	prod.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0}}}}
	resp := c.roundTrip(prod).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("Produce v%d: %+v", produceVersions.min, resp)
	}
}
