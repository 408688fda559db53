package kafkit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kafkit/kafkit"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

var (
	_ kafkit.Serde[[]byte]                  = kafkit.BytesSerde{}
	_ kafkit.Serde[string]                  = kafkit.StringSerde{}
	_ kafkit.Serde[*order]                  = kafkit.JSONSerde[*order]{}
	_ kafkit.Serde[*wrapperspb.StringValue] = kafkit.ProtobufSerde[*wrapperspb.StringValue]{}
)

type order struct {
	ID    string   `json:"id"`
	Items []string `json:"items"`
	Total float64  `json:"total"`
}

func TestBytesSerde(t *testing.T) {
	s := kafkit.BytesSerde{}
	for _, in := range [][]byte{nil, {}, []byte("abc")} {
		b, err := s.Serialize("t", in)
		if err != nil || !bytes.Equal(b, in) || (b == nil) != (in == nil) {
			t.Errorf("Serialize(%#v) = %#v, %v", in, b, err)
		}
		out, err := s.Deserialize("t", b)
		if err != nil || !bytes.Equal(out, in) || (out == nil) != (in == nil) {
			t.Errorf("Deserialize(%#v) = %#v, %v", b, out, err)
		}
	}
}

func TestStringSerde(t *testing.T) {
	s := kafkit.StringSerde{}
	tests := []struct {
		in   string
		want []byte
	}{
		{"", []byte{}},
		{"héllo, wörld", []byte("héllo, wörld")},
	}
	for _, tt := range tests {
		b, err := s.Serialize("t", tt.in)
		if err != nil || !bytes.Equal(b, tt.want) || b == nil {
			t.Errorf("Serialize(%q) = %#v, %v; want %#v (non-nil)", tt.in, b, err, tt.want)
		}
		if out, err := s.Deserialize("t", b); err != nil || out != tt.in {
			t.Errorf("Deserialize(%#v) = %q, %v; want %q", b, out, err, tt.in)
		}
	}
	if out, err := s.Deserialize("t", nil); err != nil || out != "" {
		t.Errorf("Deserialize(null) = %q, %v; want empty", out, err)
	}
}

func TestJSONSerde(t *testing.T) {
	s := kafkit.JSONSerde[*order]{}
	in := &order{ID: "o-1", Items: []string{"a", "b"}, Total: 9.5}
	b, err := s.Serialize("orders", in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"o-1","items":["a","b"],"total":9.5}`; string(b) != want {
		t.Errorf("Serialize = %s, want %s", b, want)
	}
	out, err := s.Deserialize("orders", b)
	if err != nil || out.ID != in.ID || strings.Join(out.Items, ",") != "a,b" || out.Total != in.Total {
		t.Errorf("Deserialize = %+v, %v; want %+v", out, err, in)
	}

	// Null both ways.
	if b, err := s.Serialize("orders", nil); err != nil || b != nil {
		t.Errorf("Serialize(nil) = %#v, %v; want null", b, err)
	}
	if out, err := s.Deserialize("orders", nil); err != nil || out != nil {
		t.Errorf("Deserialize(null) = %+v, %v; want nil", out, err)
	}
	if b, err := (kafkit.JSONSerde[map[string]int]{}).Serialize("t", nil); err != nil || b != nil {
		t.Errorf("Serialize(nil map) = %#v, %v; want null", b, err)
	}
	if b, err := (kafkit.JSONSerde[any]{}).Serialize("t", nil); err != nil || b != nil {
		t.Errorf("Serialize(nil any) = %#v, %v; want null", b, err)
	}
	// A value type is never null: its zero value is an object.
	if b, err := (kafkit.JSONSerde[order]{}).Serialize("t", order{}); err != nil || string(b) != `{"id":"","items":null,"total":0}` {
		t.Errorf("Serialize(order{}) = %s, %v", b, err)
	}
	if v, err := (kafkit.JSONSerde[int]{}).Deserialize("t", []byte("42")); err != nil || v != 42 {
		t.Errorf("Deserialize(42) = %d, %v", v, err)
	}

	// Errors name the topic and keep the cause.
	_, err = s.Deserialize("orders", []byte("{not json"))
	var syntaxErr *json.SyntaxError
	if err == nil || !strings.Contains(err.Error(), `"orders"`) || !errors.As(err, &syntaxErr) {
		t.Errorf("Deserialize(bad) err = %v, want a *json.SyntaxError naming the topic", err)
	}
	_, err = (kafkit.JSONSerde[func()]{}).Serialize("fns", func() {})
	var typeErr *json.UnsupportedTypeError
	if err == nil || !errors.As(err, &typeErr) {
		t.Errorf("Serialize(func) err = %v, want *json.UnsupportedTypeError", err)
	}
}

func TestProtobufSerde(t *testing.T) {
	t.Run("wrapperspb", func(t *testing.T) {
		s := kafkit.ProtobufSerde[*wrapperspb.StringValue]{}
		b, err := s.Serialize("t", wrapperspb.String("hello"))
		if err != nil {
			t.Fatal(err)
		}
		// Field 1, wire type 2, length 5, "hello".
		if want := append([]byte{0x0a, 5}, "hello"...); !bytes.Equal(b, want) {
			t.Errorf("Serialize = %x, want %x", b, want)
		}
		out, err := s.Deserialize("t", b)
		if err != nil || out.GetValue() != "hello" {
			t.Errorf("Deserialize = %v, %v", out, err)
		}
		// All defaults: empty bytes, which are not null, and back.
		b, err = s.Serialize("t", wrapperspb.String(""))
		if err != nil || b == nil || len(b) != 0 {
			t.Errorf("Serialize(default) = %#v, %v; want empty non-nil", b, err)
		}
		if out, err := s.Deserialize("t", []byte{}); err != nil || out == nil || out.GetValue() != "" {
			t.Errorf("Deserialize(empty) = %v, %v; want a default message", out, err)
		}
		// Null both ways.
		if b, err := s.Serialize("t", nil); err != nil || b != nil {
			t.Errorf("Serialize(nil) = %#v, %v; want null", b, err)
		}
		if out, err := s.Deserialize("t", nil); err != nil || out != nil {
			t.Errorf("Deserialize(null) = %v, %v; want nil", out, err)
		}
		if _, err := s.Deserialize("bad-topic", []byte{0x0a, 9, 'x'}); err == nil || !strings.Contains(err.Error(), "bad-topic") {
			t.Errorf("Deserialize(truncated) err = %v, want one naming the topic", err)
		}
	})
	t.Run("timestamppb", func(t *testing.T) {
		s := kafkit.ProtobufSerde[*timestamppb.Timestamp]{}
		in := timestamppb.New(time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC))
		b, err := s.Serialize("t", in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Deserialize("t", b)
		if err != nil || !proto.Equal(in, out) {
			t.Errorf("round trip = %v, %v; want %v", out, err, in)
		}
	})
	t.Run("structpb", func(t *testing.T) {
		s := kafkit.ProtobufSerde[*structpb.Struct]{}
		in, err := structpb.NewStruct(map[string]any{"id": "o-1", "n": 3.0, "tags": []any{"x", true}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Serialize("t", in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Deserialize("t", b)
		if err != nil || !proto.Equal(in, out) {
			t.Errorf("round trip = %v, %v; want %v", out, err, in)
		}
	})
}
