package integration

import (
	"bytes"
	"crypto/x509/pkix"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kafkit/kafkit/broker"
)

// BenchmarkSecurityProtocols (issue 13): kgo produces benchRecords()/10
// records of 1 KiB (acks=all, uncompressed) and consumes them back through
// PLAINTEXT, SSL (TLS) and SASL_SSL (SCRAM-SHA-256) listeners of one
// broker on disk in the same run, and reports each protocol's MB/s and its
// ratio to PLAINTEXT. PLAINTEXT fetches use sendfile; TLS ones copy.
//
//	go test -run '^$' -bench BenchmarkSecurityProtocols -benchtime 1x ./integration/
func BenchmarkSecurityProtocols(b *testing.B) {
	n := benchRecords() / 10
	value := bytes.Repeat([]byte("x"), 1024)
	mb := float64(n*len(value)) / 1e6
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ca := broker.NewTestCA(b)
		br := broker.NewTest(b, broker.OnDisk(), broker.WithListener(broker.ProtocolSSL), broker.WithListener(broker.ProtocolSASLSSL),
			broker.WithTLS(ca, "none"), broker.WithSCRAMUser("SCRAM-SHA-256", "bench", "bench-secret"))
		b.StartTimer()
		tlsOpt := kgo.DialTLSConfig(ca.ClientTLS(b, pkix.Name{}))
		// The three runs differ in their listener and its client options
		// only; the order turns with each iteration (-benchtime Nx), so
		// that going first (a colder disk and heap) favours none of them.
		protocols := []struct {
			name string
			opts []kgo.Opt
		}{
			{broker.ProtocolPlaintext, nil},
			{broker.ProtocolSSL, []kgo.Opt{tlsOpt}},
			{broker.ProtocolSASLSSL, []kgo.Opt{tlsOpt, kgo.SASL(scram.Auth{User: "bench", Pass: "bench-secret"}.AsSha256Mechanism())}},
		}
		rates := map[string][2]float64{}
		for j := range protocols {
			p := protocols[(i+j)%len(protocols)]
			addr := br.ListenerAddr(p.name)
			topic := "bench-" + p.name + "-" + strconv.Itoa(i)
			createTopic(b, br.Addr(), topic, benchPartitions)
			settle()
			produce := produceRate(b, addr, topic, n, value, append([]kgo.Opt{kgo.ProducerBatchCompression(kgo.NoCompression())}, p.opts...)...) * mb / float64(n)
			settle()
			consume := kgoConsumeRate(b, addr, topic, n, 0, p.opts...) * mb / float64(n)
			rates[p.name] = [2]float64{produce, consume}
		}
		base := rates[broker.ProtocolPlaintext]
		for _, p := range protocols {
			r := rates[p.name]
			b.ReportMetric(r[0], p.name+"_produce_MB/s")
			b.ReportMetric(r[1], p.name+"_consume_MB/s")
			if p.name != broker.ProtocolPlaintext {
				b.ReportMetric(r[0]/base[0], p.name+"_produce_vs_plaintext")
				b.ReportMetric(r[1]/base[1], p.name+"_consume_vs_plaintext")
			}
		}
	}
}
