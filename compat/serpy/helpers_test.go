package serpy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// step is one move of a scripted peer: read exactly expect, then write
// send; or close the connection.
type step struct {
	expect []byte
	send   []byte
	run    func()
	close  bool
}

func expect(s string) step { return step{expect: []byte(s)} }
func send(s string) step   { return step{send: []byte(s)} }

// playScript plays the steps on nc, the other side's exact byte
// sequence, and reports the first difference. The caller waits on the
// returned channel, so the goroutine never outlives the test.
func playScript(nc net.Conn, steps []step) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer nc.Close()
		for i, s := range steps {
			if s.run != nil {
				s.run()
			}
			if s.close {
				done <- nil
				return
			}
			if len(s.expect) > 0 {
				got := make([]byte, len(s.expect))
				nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(nc, got); err != nil {
					done <- fmt.Errorf("step %d: read %q: %v (got % x)", i, s.expect, err, got)
					return
				}
				if !bytes.Equal(got, s.expect) {
					done <- fmt.Errorf("step %d: got % x (%q); want % x (%q)", i, got, got, s.expect, s.expect)
					return
				}
			}
			if len(s.send) > 0 {
				if _, err := nc.Write(s.send); err != nil {
					done <- fmt.Errorf("step %d: write: %v", i, err)
					return
				}
			}
		}
		done <- nil
	}()
	return done
}

func wait(t testing.TB, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("scripted peer did not finish")
	}
}
