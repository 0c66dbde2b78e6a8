package testutil

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// networks are the Network flavours every Network test runs against.
var networks = []struct {
	name string
	new  func() *Network
}{
	{"buffered", NewNetwork},
	{"unbuffered", NewNetworkUnbuffered},
}

// isTimeout reports whether err is a deadline expiry in both of the ways
// callers test for it.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

// memRoundTrip sends msg from a to b, writing in a goroutine so that it also
// works over net.Pipe.
func memRoundTrip(t *testing.T, a, b net.Conn, msg string) {
	t.Helper()
	var werr error
	var wg sync.WaitGroup
	wg.Go(func() { _, werr = a.Write([]byte(msg)) })
	buf := make([]byte, len(msg))
	_, rerr := io.ReadFull(b, buf)
	wg.Wait()
	if werr != nil || rerr != nil || string(buf) != msg {
		t.Fatalf("sent %q, received %q (write: %v, read: %v)", msg, buf, werr, rerr)
	}
}

func TestNetworkDialAccept(t *testing.T) {
	for _, nw := range networks {
		t.Run(nw.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := nw.new()
				ln, err := n.Listen("mem:a")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				if ln.Addr().String() != "mem:a" || ln.Addr().Network() != "memnet" {
					t.Fatalf("listener address %v/%v", ln.Addr().Network(), ln.Addr())
				}

				var clients, servers []net.Conn
				for range 2 {
					c, err := n.Dial(t.Context(), "mem:a")
					if err != nil {
						t.Fatal(err)
					}
					s, err := ln.Accept()
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					defer s.Close()
					memRoundTrip(t, c, s, "hello")
					memRoundTrip(t, s, c, "world")
					if c.RemoteAddr().String() != "mem:a" || s.LocalAddr().String() != "mem:a" {
						t.Fatalf("server side address: client sees %v, server has %v", c.RemoteAddr(), s.LocalAddr())
					}
					if c.LocalAddr() != s.RemoteAddr() || c.LocalAddr().String() == "mem:a" {
						t.Fatalf("client side address: client has %v, server sees %v", c.LocalAddr(), s.RemoteAddr())
					}
					if c.LocalAddr().Network() != "memnet" {
						t.Fatalf("client address network %q", c.LocalAddr().Network())
					}
					clients, servers = append(clients, c), append(servers, s)
				}
				if clients[0].LocalAddr() == clients[1].LocalAddr() {
					t.Fatalf("two connections share the client address %v", clients[0].LocalAddr())
				}
			})
		})
	}
}

func TestNetworkListen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork()
		ln, err := n.Listen("mem:a")
		if err != nil {
			t.Fatal(err)
		}
		_, err = n.Listen("mem:a")
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("second Listen on mem:a: %v, want EADDRINUSE", err)
		}
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		if err := ln.Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second Close: %v, want net.ErrClosed", err)
		}
		ln, err = n.Listen("mem:a")
		if err != nil {
			t.Fatalf("Listen after Close: %v", err)
		}
		defer ln.Close()

		a, err := n.Listen("")
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := n.Listen("")
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if a.Addr() == b.Addr() || a.Addr().String() == "" {
			t.Fatalf("picked addresses %v and %v", a.Addr(), b.Addr())
		}

		// Networks are independent.
		other, err := NewNetwork().Listen("mem:a")
		if err != nil {
			t.Fatalf("Listen on another Network: %v", err)
		}
		other.Close()
	})
}

func TestNetworkDialRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork()
		_, err := n.Dial(t.Context(), "mem:nobody")
		var oe *net.OpError
		if !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &oe) || oe.Op != "dial" {
			t.Fatalf("Dial with no listener: %v, want a dial *net.OpError wrapping ECONNREFUSED", err)
		}

		ln, err := n.Listen("mem:a")
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		if _, err := n.Dial(t.Context(), "mem:a"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("Dial after the listener closed: %v, want ECONNREFUSED", err)
		}
	})
}

func TestNetworkDialContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork()
		ln, err := n.Listen("mem:a")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()

		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := n.Dial(ctx, "mem:a"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Dial with a cancelled context: %v, want context.Canceled", err)
		}

		// Dial returns before Accept, up to the backlog.
		var conns []net.Conn
		for range memBacklog {
			c, err := n.Dial(t.Context(), "mem:a")
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()

		// With the backlog full Dial waits, until its context ends...
		ctx, cancel = context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		_, err = n.Dial(ctx, "mem:a")
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("Dial with a full backlog: %v after %v, want DeadlineExceeded after 1s", err, time.Since(start))
		}

		// ...or until Accept makes room.
		var dialed net.Conn
		var dialErr error
		var wg sync.WaitGroup
		wg.Go(func() { dialed, dialErr = n.Dial(t.Context(), "mem:a") })
		synctest.Wait()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		wg.Wait()
		if dialErr != nil {
			t.Fatalf("Dial after Accept made room: %v", dialErr)
		}
		defer dialed.Close()
		// Connections are accepted in dial order.
		memRoundTrip(t, conns[0], s, "first")
	})
}

func TestNetworkListenerClose(t *testing.T) {
	for _, nw := range networks {
		t.Run(nw.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := nw.new()
				ln, err := n.Listen("mem:a")
				if err != nil {
					t.Fatal(err)
				}
				pending, err := n.Dial(t.Context(), "mem:a")
				if err != nil {
					t.Fatal(err)
				}
				defer pending.Close()
				s, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				queued, err := n.Dial(t.Context(), "mem:a")
				if err != nil {
					t.Fatal(err)
				}
				defer queued.Close()

				var acceptErr error
				var wg sync.WaitGroup
				// The queued connection is accepted first; the second Accept
				// blocks until Close.
				wg.Go(func() {
					c, err := ln.Accept()
					if err != nil {
						acceptErr = err
						return
					}
					c.Close()
					_, acceptErr = ln.Accept()
				})
				synctest.Wait()
				ln.Close()
				wg.Wait()
				if !errors.Is(acceptErr, net.ErrClosed) {
					t.Fatalf("Accept after Close: %v, want net.ErrClosed", acceptErr)
				}
				if _, err := queued.Read(make([]byte, 1)); err != io.EOF {
					t.Fatalf("client of a closed server conn read %v, want EOF", err)
				}
				// An accepted connection outlives its listener.
				memRoundTrip(t, pending, s, "still here")
			})
		})
	}
}

func TestNetworkListenerCloseClosesBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork()
		ln, err := n.Listen("mem:a")
		if err != nil {
			t.Fatal(err)
		}
		c, err := n.Dial(t.Context(), "mem:a")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ln.Close()
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read on a never-accepted connection: %v, want EOF", err)
		}
	})
}

func TestNetworkDeadlines(t *testing.T) {
	for _, nw := range networks {
		t.Run(nw.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := nw.new()
				ln, err := n.Listen("mem:a")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				c, err := n.Dial(t.Context(), "mem:a")
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				s, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()

				start := time.Now()
				c.SetReadDeadline(start.Add(time.Second))
				_, err = c.Read(make([]byte, 1))
				if !isTimeout(err) || time.Since(start) != time.Second {
					t.Fatalf("Read: %v after %v, want a timeout after 1s", err, time.Since(start))
				}
			})
		})
	}
}

func TestBufferedPipeWriteBlocksWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewBufferedPipe(8)
		defer a.Close()
		defer b.Close()

		// Up to the buffer size, Write returns without a reader.
		if n, err := a.Write([]byte("01234567")); n != 8 || err != nil {
			t.Fatalf("Write into an empty buffer: %d, %v", n, err)
		}

		var done atomic.Bool
		var n int
		var err error
		var wg sync.WaitGroup
		wg.Go(func() {
			n, err = a.Write([]byte("89"))
			done.Store(true)
		})
		synctest.Wait()
		if done.Load() {
			t.Fatal("Write returned although the buffer was full")
		}
		one := make([]byte, 1)
		if _, err := b.Read(one); err != nil || one[0] != '0' {
			t.Fatalf("Read: %q, %v", one, err)
		}
		synctest.Wait()
		if done.Load() {
			t.Fatal("Write of 2 bytes returned with room for 1")
		}
		if _, err := b.Read(one); err != nil || one[0] != '1' {
			t.Fatalf("Read: %q, %v", one, err)
		}
		wg.Wait()
		if n != 2 || err != nil {
			t.Fatalf("blocked Write: %d, %v", n, err)
		}
		rest := make([]byte, 8)
		if _, err := io.ReadFull(b, rest); err != nil || string(rest) != "23456789" {
			t.Fatalf("rest: %q, %v", rest, err)
		}
	})
}

func TestBufferedPipeClose(t *testing.T) {
	t.Run("peer reads buffered bytes then EOF", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := NewBufferedPipe(64)
			defer b.Close()
			if _, err := a.Write([]byte("abc")); err != nil {
				t.Fatal(err)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(b)
			if string(got) != "abc" || err != nil {
				t.Fatalf("ReadAll: %q, %v", got, err)
			}
			if _, err := b.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("Read after drain: %v, want EOF", err)
			}
			if _, err := b.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
				t.Fatalf("Write to a closed peer: %v, want EPIPE", err)
			}
			if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Read on the closed end: %v, want net.ErrClosed", err)
			}
			if _, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Write on the closed end: %v, want net.ErrClosed", err)
			}
			if err := a.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("SetDeadline on the closed end: %v, want net.ErrClosed", err)
			}
			if err := a.Close(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("second Close: %v, want net.ErrClosed", err)
			}
		})
	})

	t.Run("local Close unblocks Read and Write", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := NewBufferedPipe(4)
			defer b.Close()
			var rerr, werr error
			var wn int
			var wg sync.WaitGroup
			wg.Go(func() { _, rerr = a.Read(make([]byte, 1)) })
			wg.Go(func() { wn, werr = a.Write([]byte("0123456789")) })
			synctest.Wait()
			a.Close()
			wg.Wait()
			if !errors.Is(rerr, net.ErrClosed) {
				t.Fatalf("blocked Read: %v, want net.ErrClosed", rerr)
			}
			if wn != 4 || !errors.Is(werr, net.ErrClosed) {
				t.Fatalf("blocked Write: %d, %v; want 4, net.ErrClosed", wn, werr)
			}
		})
	})

	t.Run("peer Close unblocks Read and Write", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := NewBufferedPipe(4)
			defer a.Close()
			var rerr, werr error
			var wn int
			var wg sync.WaitGroup
			wg.Go(func() { _, rerr = a.Read(make([]byte, 1)) })
			wg.Go(func() { wn, werr = a.Write([]byte("0123456789")) })
			synctest.Wait()
			b.Close()
			wg.Wait()
			if rerr != io.EOF {
				t.Fatalf("blocked Read: %v, want EOF", rerr)
			}
			if wn != 4 || !errors.Is(werr, syscall.EPIPE) {
				t.Fatalf("blocked Write: %d, %v; want 4, EPIPE", wn, werr)
			}
		})
	})

	t.Run("CloseWrite half-closes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := NewBufferedPipe(64)
			defer a.Close()
			defer b.Close()
			a.Write([]byte("last"))
			if err := a.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(b)
			if string(got) != "last" || err != nil {
				t.Fatalf("ReadAll after CloseWrite: %q, %v", got, err)
			}
			if _, err := a.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
				t.Fatalf("Write after CloseWrite: %v, want EPIPE", err)
			}
			// The other direction still works.
			if _, err := b.Write([]byte("reply")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "reply" {
				t.Fatalf("reply: %q, %v", buf, err)
			}
		})
	})
}

func TestBufferedPipeDeadlines(t *testing.T) {
	t.Run("read deadline expires", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := NewBufferedPipe(16)
			defer a.Close()
			defer b.Close()
			start := time.Now()
			a.SetReadDeadline(start.Add(time.Second))
			n, err := a.Read(make([]byte, 4))
			if n != 0 || !isTimeout(err) || time.Since(start) != time.Second {
				t.Fatalf("Read: %d, %v after %v; want a timeout after 1s", n, err, time.Since(start))
			}
			// An expired deadline fails at once, even with data waiting.
			b.Write([]byte("data"))
			if _, err := a.Read(make([]byte, 4)); !isTimeout(err) || time.Since(start) != time.Second {
				t.Fatalf("Read past the deadline: %v", err)
			}
			// Clearing it makes the data readable.
			a.SetReadDeadline(time.Time{})
			buf := make([]byte, 4)
			if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "data" {
				t.Fatalf("Read after clearing: %q, %v", buf, err)
			}
		})
	})

	t.Run("data before the deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := NewBufferedPipe(16)
			defer a.Close()
			defer b.Close()
			start := time.Now()
			a.SetReadDeadline(start.Add(time.Second))
			var wg sync.WaitGroup
			wg.Go(func() {
				time.Sleep(400 * time.Millisecond)
				b.Write([]byte("x"))
			})
			buf := make([]byte, 1)
			n, err := a.Read(buf)
			wg.Wait()
			if n != 1 || err != nil || time.Since(start) != 400*time.Millisecond {
				t.Fatalf("Read: %d, %v after %v; want 1 byte after 400ms", n, err, time.Since(start))
			}
		})
	})

	t.Run("changing the deadline wakes a blocked Read", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := NewBufferedPipe(16)
			defer a.Close()
			defer b.Close()
			start := time.Now()
			a.SetReadDeadline(start.Add(time.Second))
			var err error
			var returned time.Duration
			var wg sync.WaitGroup
			wg.Go(func() {
				_, err = a.Read(make([]byte, 1))
				returned = time.Since(start)
			})
			time.Sleep(500 * time.Millisecond)
			a.SetReadDeadline(start.Add(3 * time.Second)) // extend
			time.Sleep(time.Second)                       // past the old deadline
			synctest.Wait()
			a.SetDeadline(time.Now()) // shorten to now
			wg.Wait()
			if !isTimeout(err) || returned != 1500*time.Millisecond {
				t.Fatalf("Read: %v after %v; want a timeout after 1.5s", err, returned)
			}
		})
	})

	t.Run("write deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := NewBufferedPipe(4)
			defer a.Close()
			defer b.Close()
			start := time.Now()
			a.SetWriteDeadline(start.Add(time.Second))
			n, err := a.Write([]byte("0123456789"))
			if n != 4 || !isTimeout(err) || time.Since(start) != time.Second {
				t.Fatalf("Write: %d, %v after %v; want 4 bytes and a timeout after 1s", n, err, time.Since(start))
			}
			// The read side has its own deadline.
			buf := make([]byte, 4)
			if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "0123" {
				t.Fatalf("Read: %q, %v", buf, err)
			}
		})
	})
}

// TestBufferedPipeStream moves data both ways at once through small buffers
// with uneven read and write sizes, inside and outside a bubble.
func TestBufferedPipeStream(t *testing.T) {
	run := func(t *testing.T) {
		a, b := NewBufferedPipe(1000)
		defer a.Close()
		defer b.Close()
		const size = 1 << 20
		up, down := pattern(size, 8), pattern(size, 9)
		send := func(c net.Conn, data []byte) error {
			for off, step := 0, 1; off < len(data); step = step%4093 + 7 {
				end := min(off+step, len(data))
				if _, err := c.Write(data[off:end]); err != nil {
					return err
				}
				off = end
			}
			return c.(interface{ CloseWrite() error }).CloseWrite()
		}
		recv := func(c net.Conn) ([]byte, error) {
			var got []byte
			buf := make([]byte, 3001)
			for step := 1; ; step = step%2988 + 13 {
				n, err := c.Read(buf[:step])
				got = append(got, buf[:n]...)
				if err == io.EOF {
					return got, nil
				}
				if err != nil {
					return got, err
				}
			}
		}
		var gotUp, gotDown []byte
		errs := make([]error, 4)
		var wg sync.WaitGroup
		wg.Go(func() { errs[0] = send(a, up) })
		wg.Go(func() { errs[1] = send(b, down) })
		wg.Go(func() { gotUp, errs[2] = recv(b) })
		wg.Go(func() { gotDown, errs[3] = recv(a) })
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gotUp, up) || !bytes.Equal(gotDown, down) {
			t.Fatalf("received %d and %d bytes that differ from the %d sent each way", len(gotUp), len(gotDown), size)
		}
	}
	t.Run("real time", run)
	t.Run("synctest", func(t *testing.T) { synctest.Test(t, run) })
}

func TestBufferedPipeAddrs(t *testing.T) {
	a, b := NewBufferedPipe(1)
	defer a.Close()
	defer b.Close()
	if a.LocalAddr() != b.RemoteAddr() || b.LocalAddr() != a.RemoteAddr() || a.LocalAddr() == b.LocalAddr() {
		t.Fatalf("addresses: a %v->%v, b %v->%v", a.LocalAddr(), a.RemoteAddr(), b.LocalAddr(), b.RemoteAddr())
	}
	if a.LocalAddr().Network() != "memnet" {
		t.Fatalf("network %q", a.LocalAddr().Network())
	}
}
