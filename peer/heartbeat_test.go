package peer

import (
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slc-go/slc/internal/wire"
)

// These run in synctest bubbles over in-memory pipes: the heartbeat
// timeouts pass on the bubble's fake clock, with no real waiting.

func heartbeatConfig(t *testing.T) *Config {
	return testConfig(t, "local", func(c *Config) {
		c.Heartbeat = time.Second
		c.HeartbeatTimeout = 5 * time.Second
	})
}

// countPings reads what is buffered from the local side until EOF and
// counts its PINGs.
func countPings(t *testing.T, r *remote) int {
	n := 0
	for {
		h, _, err := r.nextErr()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.Fatalf("reading the local side: %v", err)
			}
			return n
		}
		if h.Type == wire.TypePing {
			n++
		}
	}
}

func TestHeartbeatSilentRemote(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := heartbeatConfig(t)
		h := serve(t, newSession(cfg, "remote"), remoteHello("remote")) // pings every second
		h.up(0)
		start := time.Now()
		err := h.down()
		took := time.Since(start)
		var he *HeartbeatError
		if !errors.As(err, &he) || he.Silent != 5*time.Second {
			t.Fatalf("down with %v, want a HeartbeatError after 5s of silence", err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("%v is not a timeout", err)
		}
		if took != 5*time.Second {
			t.Fatalf("declared dead after %v of silence, want 5s", took)
		}
		// Meanwhile the idle local side pinged every second (Config:
		// "Heartbeat is how often an idle connection sends a PING").
		if n := countPings(t, h.r); n < 4 || n > 5 {
			t.Fatalf("%d PINGs in 5s of idleness with a 1s heartbeat, want 4 or 5", n)
		}
	})
}

// TestHeartbeatRemoteInterval: the silence allowed is at least three of
// the remote's heartbeat intervals.
func TestHeartbeatRemoteInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := heartbeatConfig(t)
		hello := remoteHello("remote")
		hello.HeartbeatMS = 3000
		h := serve(t, newSession(cfg, "remote"), hello)
		h.up(0)
		start := time.Now()
		err := h.down()
		var he *HeartbeatError
		if !errors.As(err, &he) || time.Since(start) != 9*time.Second {
			t.Fatalf("down with %v after %v, want a heartbeat timeout after 9s", err, time.Since(start))
		}
	})
}

// TestHeartbeatPingsKeepAlive: a remote that sends nothing but PINGs,
// more often than the timeout, stays connected and gets PONGs; once it
// stops, it is declared dead one timeout after its last PING.
func TestHeartbeatPingsKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := heartbeatConfig(t)
		h := serve(t, newSession(cfg, "remote"), remoteHello("remote"))
		h.up(0)
		nc := h.r.nc
		nc.SetWriteDeadline(time.Time{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := uint64(1); i <= 10; i++ {
				time.Sleep(4 * time.Second)
				if _, err := nc.Write(wire.AppendPing(nil, 1, false, i)); err != nil {
					return
				}
			}
		}()
		time.Sleep(40*time.Second + time.Millisecond)
		h.noDown()
		<-done
		lastPing := time.Now().Add(-time.Millisecond)
		if err := h.down(); !errors.As(err, new(*HeartbeatError)) {
			t.Fatalf("down with %v", err)
		}
		if took := time.Since(lastPing); took != 5*time.Second {
			t.Fatalf("declared dead %v after the last PING, want 5s", took)
		}
		pongs := map[uint64]bool{}
		for {
			hd, p, err := h.r.nextErr()
			if err != nil {
				break
			}
			if hd.Type == wire.TypePong {
				n, _ := wire.ParsePing(p)
				pongs[n] = true
			}
		}
		if len(pongs) != 10 {
			t.Fatalf("PONGs for %d of 10 PINGs", len(pongs))
		}
	})
}

// TestHeartbeatNoResume: a remote that completes the hello but never
// sends its RESUME is cut at the handshake deadline with a timeout
// GOODBYE.
func TestHeartbeatNoResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "local", func(c *Config) { c.Timeout = 2 * time.Second })
		start := time.Now()
		h := serve(t, newSession(cfg, "remote"), remoteHello("remote"))
		if hd, _ := h.r.next(); hd.Type != wire.TypeResume {
			t.Fatalf("first frame %s", wire.TypeName(hd.Type))
		}
		h.r.expectClose(wire.TypeGoodbye, wire.CodeTimeout)
		wantProto(t, h.down(), wire.CodeTimeout)
		if took := time.Since(start); took != 2*time.Second {
			t.Fatalf("cut after %v, want the 2s handshake deadline", took)
		}
	})
}
