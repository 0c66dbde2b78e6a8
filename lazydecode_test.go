package slc_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/vmihailenco/msgpack/v5"
)

// gated decodes only when its gate lets it: a stand-in for an expensive
// or slow body type.
type gated struct{ N int }

var gate atomic.Pointer[chan struct{}]

func (g *gated) DecodeMsgpack(d *msgpack.Decoder) error {
	<-*gate.Load()
	n, err := d.DecodeInt()
	g.N = n
	return err
}

func (g gated) EncodeMsgpack(e *msgpack.Encoder) error { return e.EncodeInt(int64(g.N)) }

// failing never decodes.
type failing struct{ N int }

func (*failing) DecodeMsgpack(d *msgpack.Decoder) error {
	return errors.New("refused by the test type")
}

func init() {
	slc.Register[gated]("test.gated")
	slc.Register[failing]("test.failing")
}

// Typed bodies are decoded by the goroutine that takes the message, not by
// the connection's reader: a body that is slow to decode holds up its
// receiver, never the connection (acknowledgements, later messages to
// other receivers, heartbeats).
func TestDecodeOnTheReceivingGoroutine(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	g := make(chan struct{})
	gate.Store(&g)
	rx, tx := newComm(t, "rx"), newComm(t, "tx")
	to, err := tx.Connect(ctx, listen(t, rx))
	if err != nil {
		t.Fatal(err)
	}
	id, err := tx.Send(ctx, gated{N: 7}, to)
	if err != nil {
		t.Fatal(err)
	}
	// Decoding is blocked, yet the message arrives and is acknowledged.
	if err := tx.WaitAcknowledged(ctx, id, to); err != nil {
		t.Fatalf("not acknowledged while its body waits to be decoded: %v", err)
	}
	if n := rx.Pending(); n != 1 {
		t.Fatalf("Pending = %d, want 1", n)
	}
	got := make(chan slc.Message, 1)
	go func() {
		m, err := rx.Receive(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	close(g) // Receive decodes now
	var m slc.Message
	select {
	case m = <-got:
	case <-ctx.Done():
		t.Fatal("Receive did not return")
	}
	if b, ok := m.Body.(gated); !ok || b.N != 7 || m.Err != nil {
		t.Fatalf("Body %#v, Err %v; want gated{7}", m.Body, m.Err)
	}

	// Every way of taking a message decodes it: TryReceive, Handle.
	if _, err := tx.Send(ctx, gated{N: 8}, to); err != nil {
		t.Fatal(err)
	}
	for {
		if m, ok := rx.TryReceive(); ok {
			if b, _ := m.Body.(gated); b.N != 8 {
				t.Fatalf("TryReceive: Body %#v", m.Body)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("no message for TryReceive")
		case <-time.After(time.Millisecond):
		}
	}
	handled := make(chan slc.Message, 2)
	cancel := rx.Handle(func(m slc.Message) { handled <- m }, "test.gated", "test.failing")
	defer cancel()
	if _, err := tx.Send(ctx, gated{N: 8}, to); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-handled:
		if b, _ := m.Body.(gated); b.N != 8 {
			t.Fatalf("Handle: Body %#v", m.Body)
		}
	case <-ctx.Done():
		t.Fatal("Handle got nothing")
	}

	// A body that fails to decode arrives with Err set and its bytes.
	if _, err := tx.Send(ctx, failing{N: 1}, to); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-handled:
		if m.Err == nil || m.Body != nil || len(m.Raw) == 0 {
			t.Fatalf("undecodable: Body %#v, Err %v, Raw %d bytes", m.Body, m.Err, len(m.Raw))
		}
	case <-ctx.Done():
		t.Fatal("Handle got nothing")
	}
}
