package rpc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slc-go/slc/rpc"
)

// TestCancelReachesHandler: canceling the caller's context cancels the
// handler's context on the remote node.
func TestCancelReachesHandler(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	_, client, impl, peer := calcPair(t)

	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := client.Call(cctx, peer, "/calc", "test.Calc", "block", rpc.Args{"tag": "c1"})
		done <- err
	}()
	var b blocked
	select {
	case b = <-impl.started:
	case <-ctx.Done():
		t.Fatal("the handler did not start")
	}
	if b.hasDeadline {
		t.Errorf("the handler's context has a deadline (%v); the caller set none", b.deadline)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, rpc.ErrCanceled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Call: %v, want canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("Call did not return")
	}
	select {
	case e := <-impl.ended:
		if e.tag != "c1" || !errors.Is(e.err, context.Canceled) {
			t.Fatalf("handler %q ended with %v, want context.Canceled", e.tag, e.err)
		}
	case <-ctx.Done():
		t.Fatal("the cancel did not reach the handler")
	}
}

// TestDeadlineTravels: the handler's context has the caller's deadline
// (the time left when the call was sent).
func TestDeadlineTravels(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	_, client, impl, peer := calcPair(t)

	deadline := time.Now().Add(20 * time.Second)
	cctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := client.Call(cctx, peer, "/calc", "test.Calc", "block", rpc.Args{"tag": "d1"})
		done <- err
	}()
	var b blocked
	select {
	case b = <-impl.started:
	case <-ctx.Done():
		t.Fatal("the handler did not start")
	}
	if !b.hasDeadline {
		t.Fatal("the handler's context has no deadline")
	}
	// The handler's deadline is the caller's, shifted by the time the
	// call took to arrive.
	if b.deadline.Before(deadline) || b.deadline.After(deadline.Add(10*time.Second)) {
		t.Errorf("handler deadline %v, caller deadline %v", b.deadline, deadline)
	}
	cancel()
	if err := <-done; !errors.Is(err, rpc.ErrCanceled) {
		t.Fatalf("Call: %v, want canceled", err)
	}
	<-impl.ended
}
