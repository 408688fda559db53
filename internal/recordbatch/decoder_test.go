package recordbatch

import (
	"errors"
	"testing"

	"github.com/kafkit/kafkit"
)

// A batch decoded a few records at a time gives the records Reader gives
// at once, for every codec.
func TestRecordDecoderChunks(t *testing.T) {
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			recs := testRecords(true)
			raw := buildBatch(t, Options{Compression: codec}, NoProducer(), recs)
			d, err := NewRecordDecoder(raw, ReadOptions{VerifyCRC: true, Topic: "t", Partition: 2})
			if err != nil {
				t.Fatal(err)
			}
			var got []kafkit.Record
			for d.Len() > 0 {
				chunk := make([]kafkit.Record, min(3, d.Len()))
				if err := d.Decode(chunk); err != nil {
					t.Fatal(err)
				}
				got = append(got, chunk...)
			}
			if len(got) != len(recs) {
				t.Fatalf("%d records, want %d", len(got), len(recs))
			}
			for i := range recs {
				sameRecord(t, i, got[i], recs[i], int64(i))
				if got[i].Topic != "t" || got[i].Partition != 2 {
					t.Errorf("record %d: %s/%d", i, got[i].Topic, got[i].Partition)
				}
			}
			if err := d.Decode(make([]kafkit.Record, 1)); err == nil {
				t.Fatal("decoding past the last record: no error")
			}
		})
	}
}

// A record cut short fails the chunk that reaches it, naming the record.
func TestRecordDecoderCorruptRecord(t *testing.T) {
	recs := testRecords(false)
	raw := buildBatch(t, Options{}, NoProducer(), recs)
	raw[len(raw)-1] ^= 0xff                        // the last record's last header value length... or its bytes
	d, err := NewRecordDecoder(raw, ReadOptions{}) // no CRC check: the decoder sees the damage
	if err != nil {
		t.Fatal(err)
	}
	head := make([]kafkit.Record, len(recs)-1)
	if err := d.Decode(head); err != nil {
		t.Fatalf("records before the damage: %v", err)
	}
	if err := d.Decode(make([]kafkit.Record, 1)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged record: %v, want ErrCorrupt", err)
	}
	if _, err := NewRecordDecoder(raw, ReadOptions{VerifyCRC: true}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("with the CRC checked: %v, want ErrCorrupt", err)
	}
}
