package storage

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
)

const (
	offsetIndexEntrySize = 8  // relative offset uint32, position uint32
	timeIndexEntrySize   = 12 // timestamp int64, relative offset uint32
)

// offsetEntry is one .index entry: the batch whose last offset is base+rel
// starts at byte pos of the .log file.
type offsetEntry struct {
	rel uint32
	pos uint32
}

// timeEntry is one .timeindex entry: no record up to offset base+rel has a
// timestamp above ts.
type timeEntry struct {
	ts  int64
	rel uint32
}

func (e offsetEntry) put(b []byte) {
	binary.BigEndian.PutUint32(b, e.rel)
	binary.BigEndian.PutUint32(b[4:], e.pos)
}

func (e timeEntry) put(b []byte) {
	binary.BigEndian.PutUint64(b, uint64(e.ts))
	binary.BigEndian.PutUint32(b[8:], e.rel)
}

// lookupEntry returns the last entry at or below relative offset rel: the
// batch to start scanning from. ok is false when there is none (scan from 0).
func lookupEntry(index []offsetEntry, rel uint32) (e offsetEntry, ok bool) {
	i := sort.Search(len(index), func(i int) bool { return index[i].rel > rel })
	if i == 0 {
		return e, false
	}
	return index[i-1], true
}

// lookupBelowTimestamp returns the relative offset of the last entry whose
// timestamp is below ts: every record up to it is older than ts.
func lookupBelowTimestamp(tindex []timeEntry, ts int64) (rel uint32, ok bool) {
	i := sort.Search(len(tindex), func(i int) bool { return tindex[i].ts >= ts })
	if i == 0 {
		return 0, false
	}
	return tindex[i-1].rel, true
}

// decodeOffsetIndex parses and sanity-checks an .index file against the size
// of its .log file.
func decodeOffsetIndex(b []byte, logSize int64) ([]offsetEntry, error) {
	if len(b)%offsetIndexEntrySize != 0 {
		return nil, fmt.Errorf("size %d is not a multiple of %d", len(b), offsetIndexEntrySize)
	}
	entries := make([]offsetEntry, 0, len(b)/offsetIndexEntrySize)
	for i := 0; i < len(b); i += offsetIndexEntrySize {
		e := offsetEntry{rel: binary.BigEndian.Uint32(b[i:]), pos: binary.BigEndian.Uint32(b[i+4:])}
		switch {
		case e.rel > math.MaxInt32:
			return nil, fmt.Errorf("entry %d: relative offset %d overflows", i/offsetIndexEntrySize, e.rel)
		case int64(e.pos) >= logSize:
			return nil, fmt.Errorf("entry %d: position %d is past the log's %d bytes", i/offsetIndexEntrySize, e.pos, logSize)
		case len(entries) > 0 && (e.rel <= entries[len(entries)-1].rel || e.pos <= entries[len(entries)-1].pos):
			return nil, fmt.Errorf("entry %d does not increase", i/offsetIndexEntrySize)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// decodeTimeIndex parses and sanity-checks a .timeindex file.
func decodeTimeIndex(b []byte) ([]timeEntry, error) {
	if len(b)%timeIndexEntrySize != 0 {
		return nil, fmt.Errorf("size %d is not a multiple of %d", len(b), timeIndexEntrySize)
	}
	entries := make([]timeEntry, 0, len(b)/timeIndexEntrySize)
	for i := 0; i < len(b); i += timeIndexEntrySize {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(b[i:])), rel: binary.BigEndian.Uint32(b[i+8:])}
		switch {
		case e.rel > math.MaxInt32:
			return nil, fmt.Errorf("entry %d: relative offset %d overflows", i/timeIndexEntrySize, e.rel)
		case len(entries) > 0 && (e.ts <= entries[len(entries)-1].ts || e.rel < entries[len(entries)-1].rel):
			return nil, fmt.Errorf("entry %d does not increase", i/timeIndexEntrySize)
		}
		entries = append(entries, e)
	}
	return entries, nil
}
