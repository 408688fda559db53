// Package wirecheck checks the structure of a Kafka request or response body
// against its schema before kmsg decodes it.
//
// kmsg decodes a tag section by looping over the tag count it reads, even
// after the input has run out, so a 20-byte message carrying a forged count
// of four billion tags keeps a core busy for tens of seconds. The checks walk
// the same layout kmsg decodes (the schemas are generated from the definitions
// kmsg itself is generated from) and refuse a body in which any length, array
// count or tag count claims more than the bytes left, so every body they
// accept decodes in time proportional to its length: the broker checks
// requests, the client checks responses.
package wirecheck

//go:generate go run ./gen

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
)

type kind uint8

const (
	kFixed          kind = iota // size bytes
	kString                     // int16 length, or compact uvarint length+1
	kBytes                      // int32 length, or compact uvarint length+1
	kArray                      // int32 count, or compact uvarint count+1
	kStruct                     // fields, then a tag section in flexible versions
	kNullableStruct             // int8 -1 for null, else a struct
)

// open is the max of a field present in every version from its min.
const open = 1<<15 - 1

type typ struct {
	kind   kind
	size   int
	elem   *field
	fields []field
}

type field struct {
	typ
	min, max int16
	tagged   bool
	tag      uint32
}

type message struct {
	name       string
	maxVersion int16
	flexible   int16 // first flexible version; -1 for none
	fields     []field
}

// Request reports whether body, a request's bytes after its header, has the
// layout of request key at version.
func Request(key, version int16, body []byte) error {
	_, err := walk(requests[key], version, body)
	return err
}

// Response reports whether body, a response's bytes after its header, has
// the layout of the response to request key at version.
func Response(key, version int16, body []byte) error {
	_, err := walk(responses[key], version, body)
	return err
}

// SkipTags skips a message header's tag section. Unlike kmsg.SkipTags it
// stops as soon as the input runs out.
func SkipTags(rd *kbin.Reader) {
	for n := rd.Uvarint(); n > 0 && rd.Ok(); n-- {
		rd.Uvarint() // tag
		rd.Span(int(rd.Uvarint()))
	}
}

// walk checks body and returns how many bytes follow the message (kmsg
// ignores them, and so do the checks).
func walk(m *message, version int16, body []byte) (rest int, err error) {
	if m == nil || version < 0 || version > m.maxVersion {
		return 0, fmt.Errorf("no schema for this api key at version %d", version)
	}
	w := walker{version: version, flexible: m.flexible >= 0 && version >= m.flexible}
	rd := kbin.Reader{Src: body}
	if err := w.fields(&rd, m.fields); err != nil {
		return 0, fmt.Errorf("malformed %s v%d: %w", m.name, version, err)
	}
	return len(rd.Src), nil
}

type walker struct {
	version  int16
	flexible bool
}

func (w *walker) fields(rd *kbin.Reader, fs []field) error {
	for i := range fs {
		f := &fs[i]
		if f.tagged || w.version < f.min || w.version > f.max {
			continue
		}
		if err := w.value(rd, &f.typ); err != nil {
			return err
		}
	}
	if w.flexible {
		return w.tags(rd, fs)
	}
	return nil
}

func (w *walker) value(rd *kbin.Reader, t *typ) error {
	switch t.kind {
	case kFixed:
		rd.Span(t.size)
	case kString:
		w.span(rd, w.length(rd, true))
	case kBytes:
		w.span(rd, w.length(rd, false))
	case kArray:
		var n int32
		if w.flexible {
			n = rd.CompactArrayLen()
		} else {
			n = rd.ArrayLen()
		}
		for i := int32(0); i < n && rd.Ok(); i++ {
			if err := w.value(rd, &t.elem.typ); err != nil {
				return err
			}
		}
	case kNullableStruct:
		if rd.Int8() == -1 {
			break
		}
		fallthrough
	case kStruct:
		if err := w.fields(rd, t.fields); err != nil {
			return err
		}
	}
	if err := rd.Complete(); err != nil {
		return err
	}
	return nil
}

// length reads a string's (int16) or bytes' (int32) length, or its compact
// form in flexible versions; negative is null.
func (w *walker) length(rd *kbin.Reader, short bool) int {
	switch {
	case w.flexible:
		return int(rd.Uvarint()) - 1
	case short:
		return int(rd.Int16())
	default:
		return int(rd.Int32())
	}
}

func (w *walker) span(rd *kbin.Reader, n int) {
	if n > 0 {
		rd.Span(n)
	}
}

// tags walks a tag section: every tag takes at least two bytes (its key and
// its size), so a count above half the bytes left cannot be honest. Known
// tagged fields are walked too, since kmsg decodes them, tag sections
// included.
func (w *walker) tags(rd *kbin.Reader, fs []field) error {
	n := rd.Uvarint()
	if !rd.Ok() {
		return rd.Complete()
	}
	if uint64(n)*2 > uint64(len(rd.Src)) {
		return fmt.Errorf("tag count %d with %d bytes left", n, len(rd.Src))
	}
	for ; n > 0; n-- {
		key := rd.Uvarint()
		data := rd.Span(int(rd.Uvarint()))
		if err := rd.Complete(); err != nil {
			return err
		}
		for i := range fs {
			if f := &fs[i]; f.tagged && f.tag == key {
				if err := w.value(&kbin.Reader{Src: data}, &f.typ); err != nil {
					return fmt.Errorf("tag %d: %w", key, err)
				}
			}
		}
	}
	return nil
}
