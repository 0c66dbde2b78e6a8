package slc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/slc-go/slc"
)

// TestReplyToNewInboundPeer checks that a message from a peer that has
// just connected can be answered at once: the session is in the peer
// table before its connection delivers anything. (It once was registered
// only after its actor started serving, and about one reply in 500 failed
// with ErrUnknownPeer.)
func TestReplyToNewInboundPeer(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	srv := newComm(t, "replier")
	addr := listen(t, srv)
	failed := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := srv.Receive(ctx)
			if err != nil {
				return
			}
			if _, err := srv.SendRaw(ctx, m.Raw, m.From); err != nil {
				select {
				case failed <- fmt.Errorf("reply to %s: %w", m.From, err):
				default:
				}
			}
		}
	}()
	const rounds = 150
	for i := range rounds {
		c, err := slc.New(fast(slc.WithName(fmt.Sprintf("asker-%d", i)))...)
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Connect(ctx, addr)
		if err == nil {
			_, err = c.SendRaw(ctx, []byte{byte(i)}, p)
		}
		if err == nil {
			var m slc.Message
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			m, err = c.Receive(rctx)
			cancel()
			if err == nil && (len(m.Raw) != 1 || m.Raw[0] != byte(i)) {
				err = fmt.Errorf("reply %v, want [%d]", m.Raw, i)
			}
		}
		c.Close()
		select {
		case e := <-failed:
			t.Fatalf("round %d: %v", i, e)
		default:
		}
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	srv.Close()
	<-done
}
