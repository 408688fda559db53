package producer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/kafkit/kafkit"
)

// recordingInterceptor notes its calls in a shared log and threads a context
// value named after itself from OnSend to OnAck.
type recordingInterceptor struct {
	name string
	log  *[]string
}

type ctxKey string

func (ri recordingInterceptor) OnSend(ctx context.Context, r *kafkit.Record) context.Context {
	*ri.log = append(*ri.log, "send "+ri.name)
	r.Headers = append(r.Headers, kafkit.Header{Key: ri.name})
	return context.WithValue(ctx, ctxKey(ri.name), ri.name+"-state")
}

func (ri recordingInterceptor) OnAck(ctx context.Context, r *kafkit.Record, err error) {
	*ri.log = append(*ri.log, fmt.Sprintf("ack %s %v %v", ri.name, ctx.Value(ctxKey(ri.name)), err))
}

func TestChainInterceptors(t *testing.T) {
	var log []string
	chain := ChainInterceptors(recordingInterceptor{"a", &log}, nil, recordingInterceptor{"b", &log})
	r := &kafkit.Record{Topic: "t"}
	ctx := chain.OnSend(context.Background(), r)
	if got := []string{r.Headers[0].Key, r.Headers[1].Key}; !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("headers added in order %v, want [a b]", got)
	}
	failed := errors.New("boom")
	chain.OnAck(ctx, r, failed)
	want := []string{"send a", "send b", "ack a a-state boom", "ack b b-state boom"}
	if !slices.Equal(log, want) {
		t.Errorf("calls = %q, want %q", log, want)
	}

	// An empty chain passes the context through.
	empty := ChainInterceptors()
	base := context.WithValue(context.Background(), ctxKey("k"), "v")
	if got := empty.OnSend(base, r); got.Value(ctxKey("k")) != "v" {
		t.Error("empty chain lost the context")
	}
	empty.OnAck(base, r, nil)
}
