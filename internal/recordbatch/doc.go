// Package recordbatch builds and reads Kafka record batches (message format
// v2, magic 2) as wire bytes.
//
// A Builder appends records straight into the bytes that go into a Produce
// request or a log segment, so the producer's accumulator never keeps a
// second copy of a record; Finish compresses the records section and writes
// the header and CRC32-C. A Reader walks the batches of a Fetch response or
// a segment (the last batch may be cut short; the Reader stops there
// cleanly) and decodes their records into kafkit.Record values. Compression
// supports none, gzip, snappy (raw and Java's xerial framing on read; xerial
// on write, as the Java producer writes it), lz4 (frame format) and zstd.
//
// The fixed header fields are encoded and decoded with kmsg.RecordBatch and
// each record with kmsg.Record, so this package holds no wire format of its
// own beyond the field offsets it patches in place.
package recordbatch
