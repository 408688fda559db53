package wirecheck

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fill sets every field of a kmsg message to a non-default value and every
// slice to two elements, recursively, so that encoding it writes every field
// the version has, tagged ones included.
func fill(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(kmsg.Tags{}) {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() && !(depth == 0 && v.Type().Field(i).Name == "Version") {
				fill(v.Field(i), depth+1)
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), depth+1)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte{1, 2, 3})
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := 0; i < 2; i++ {
			fill(v.Index(i), depth+1)
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			fill(v.Index(i), depth+1)
		}
	case reflect.String:
		v.SetString("ab")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(3)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(3)
	case reflect.Float64:
		v.SetFloat(1.5)
	}
}

// encodings returns, for every request kmsg knows and every version of it,
// a filled request encoded by kmsg, and the same for its response.
func encodings(t testing.TB) (reqs, resps map[[2]int16][]byte) {
	reqs, resps = map[[2]int16][]byte{}, map[[2]int16][]byte{}
	for key := int16(0); key < 200; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		if requests[key] == nil || responses[key] == nil {
			t.Errorf("kmsg knows %s (key %d) but there is no schema for it", kmsg.NameForKey(key), key)
			continue
		}
		resp := req.ResponseKind()
		fill(reflect.ValueOf(req).Elem(), 0)
		fill(reflect.ValueOf(resp).Elem(), 0)
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			resp.SetVersion(v)
			reqs[[2]int16{key, v}] = req.AppendTo(nil)
			resps[[2]int16{key, v}] = resp.AppendTo(nil)
		}
	}
	return reqs, resps
}

// TestSchemasMatchKmsg: every request and response kmsg encodes, at every
// version, with every field set (tagged fields too), is accepted and walked
// to its last byte.
func TestSchemasMatchKmsg(t *testing.T) {
	reqs, resps := encodings(t)
	for _, c := range []struct {
		encs   map[[2]int16][]byte
		schema map[int16]*message
	}{{reqs, requests}, {resps, responses}} {
		for kv, body := range c.encs {
			m := c.schema[kv[0]]
			rest, err := walk(m, kv[1], body)
			if err != nil {
				t.Errorf("%s v%d: %v", m.name, kv[1], err)
				continue
			}
			if rest != 0 {
				t.Errorf("%s v%d: walked %d of %d bytes", m.name, kv[1], len(body)-rest, len(body))
			}
		}
	}
}

// forged is the largest tag count a uvarint can carry.
var forged = []byte{0xff, 0xff, 0xff, 0xff, 0x0f}

func TestForgedTagCounts(t *testing.T) {
	for _, tc := range []struct {
		name         string
		key, version int16
		body         []byte
	}{
		// ClientSoftwareName "a", ClientSoftwareVersion "b", then the
		// request's tag count: kmsg loops ~40 s on this one.
		{"ApiVersions top level", 18, 3, append([]byte{2, 'a', 2, 'b'}, forged...)},
		// One topic whose tag section is forged.
		{"Metadata topic", 3, 12, append([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 'x'}, forged...)},
		// ReplicaState (tag 1) with a forged count inside its own value.
		// 25 bytes of fixed fields, no topics, no forgotten topics, rack
		// "", then one tag: ReplicaState (tag 1, 17 bytes) whose ID and
		// Epoch are followed by a forged count of its own tags.
		{"Fetch tagged struct", 1, 12, append(append(make([]byte, 25), 1, 1, 1, 1, 1, 17,
			0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1), forged...)},
	} {
		if err := Request(tc.key, tc.version, tc.body); err == nil {
			t.Errorf("%s: forged tag count accepted", tc.name)
		}
	}
}

// TestCheckedBodiesDecodeQuickly puts a forged tag count at every position of
// flexible requests and responses and has kmsg decode every body the check
// accepts: a forged count the check missed costs kmsg seconds, which fails
// the test.
func TestCheckedBodiesDecodeQuickly(t *testing.T) {
	reqs, resps := encodings(t)
	for _, kv := range [][2]int16{{18, 3}, {3, 12}, {1, 12}, {1, 16}, {0, 9}, {11, 6}, {19, 5}, {8, 8}, {9, 8}, {44, 1}, {60, 1}} {
		for _, response := range []bool{false, true} {
			var msg interface {
				SetVersion(int16)
				ReadFrom([]byte) error
			} = kmsg.RequestForKey(kv[0])
			body, check := reqs[kv], Request
			if response {
				body, check, msg = resps[kv], Response, kmsg.RequestForKey(kv[0]).ResponseKind()
			}
			msg.SetVersion(kv[1])
			accepted := 0
			for p := 0; p <= len(body); p++ {
				mutated := append(append(append([]byte{}, body[:p]...), forged...), body[p:]...)
				for _, b := range [][]byte{mutated, mutated[:p+len(forged)]} {
					if check(kv[0], kv[1], b) != nil {
						continue
					}
					accepted++
					start := time.Now()
					msg.ReadFrom(b)
					if d := time.Since(start); d > 2*time.Second {
						t.Fatalf("%s v%d (response %v), forged count at %d: accepted, and kmsg took %v", kmsg.NameForKey(kv[0]), kv[1], response, p, d)
					}
				}
			}
			if accepted == 0 {
				t.Errorf("%s v%d (response %v): no mutation accepted; the test decodes nothing", kmsg.NameForKey(kv[0]), kv[1], response)
			}
		}
	}
}

func TestSkipTagsStopsAtTheEnd(t *testing.T) {
	rd := kbin.Reader{Src: forged}
	done := make(chan struct{})
	go func() { SkipTags(&rd); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("SkipTags looped over a forged count")
	}
	if rd.Ok() {
		t.Fatal("a forged header tag count was read as valid")
	}
}

func TestUnknownKeyOrVersion(t *testing.T) {
	if Request(-1, 0, nil) == nil || Request(18, 99, nil) == nil || Response(18, 99, nil) == nil {
		t.Fatal("a key or version without a schema was accepted")
	}
}

func FuzzRequest(f *testing.F) {
	reqs, _ := encodings(f)
	for kv, body := range reqs {
		f.Add(kv[0], kv[1], body)
		f.Add(kv[0], kv[1], append(bytes.Clone(body), forged...))
	}
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		if Request(key, version, body) != nil {
			return
		}
		req := kmsg.RequestForKey(key)
		req.SetVersion(version)
		start := time.Now()
		req.ReadFrom(body)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("accepted body took kmsg %v to decode", d)
		}
	})
}
