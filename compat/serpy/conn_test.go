package serpy

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slc-go/slc/compat"
	"github.com/slc-go/slc/internal/testutil"
)

// pipeDialer returns a dialer that hands out the client ends of buffered
// pipes, and a channel of the server ends.
func pipeDialer() (func(context.Context, string) (net.Conn, error), chan net.Conn) {
	peers := make(chan net.Conn, 4)
	return func(ctx context.Context, addr string) (net.Conn, error) {
		a, b := testutil.NewBufferedPipe(64 << 10)
		peers <- b
		return a, nil
	}, peers
}

func dialPipe(t *testing.T, opts ...Option) (*Client, net.Conn) {
	t.Helper()
	dial, peers := pipeDialer()
	c, err := Dial(testCtx(t, 5*time.Second), "instrument", append([]Option{WithDialer(dial)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c, <-peers
}

// A Python serpy server plays its side of every mode, byte for byte: mode
// changes are announced and acknowledged, modes 1 and 3 wait for ACKEOT,
// and messages it sends are acknowledged by the Go client.
func TestScriptedV1Exchange(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	c, peer := dialPipe(t, WithProtocol(V1))
	defer c.Close()
	done := playScript(peer, []step{
		expect("hi\x1f"),
		expect("\x01SETMODE1\x1f"), send("\x01ACKMODCG\x1f"),
		expect("ack me\x04\x1f"), send("\x01ACKEOT!!\x1f"),
		expect("\x01SETMODE2\x1f"), send("\x01ACKMODCG\x1f"),
		expect("009C61O)~M2nh\x1f"),
		expect("\x01SETMODE3\x1f"), send("\x01ACKMODCG\x1f"),
		expect("5&\x04\x1f"), send("\x01ACKEOT!!\x1f"),
		// the server's own messages
		send("plain from python\x1f"),
		send("\x01SETMODE1\x1f"), expect("\x01ACKMODCG\x1f"),
		send("acked\x04\x1f"), expect("\x01ACKEOT!!\x1f"),
		send("\x01SETMODE2\x1f"), expect("\x01ACKMODCG\x1f"),
		send("Xk~0{Zv\x1f"),
	})
	if err := c.Send(ctx, "hi"); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMode(ctx, "ack me", ModeAck); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}); err != nil { // bytes switch to mode 2
		t.Fatal(err)
	}
	if err := c.SendMode(ctx, []byte{0x12}, ModeAck); err != nil { // bytes, acknowledged: mode 3
		t.Fatal(err)
	}
	for _, want := range []string{"plain from python", "acked", "hello"} {
		v, err := c.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(v.([]byte)) != want {
			t.Errorf("Receive = %q; want %q", v, want)
		}
	}
	wait(t, done)
}

// Acknowledgements go to the messages in the order they were sent, and
// one that nobody waits for is ignored rather than taken for the next.
func TestV1AcksInOrder(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	c, peer := dialPipe(t, WithProtocol(V1))
	defer c.Close()
	errs := make(chan error, 2)
	hold := make(chan struct{})
	twoCtx, cancelTwo := context.WithCancel(ctx)
	defer cancelTwo()
	done := playScript(peer, []step{
		send("\x01ACKEOT!!\x1f"), // unsolicited: nobody waits for it
		expect("\x01SETMODE1\x1f"), send("\x01ACKMODCG\x1f"),
		expect("one\x04\x1f"),
		// "two" goes out while "one" waits for its acknowledgement
		{run: func() { go func() { errs <- c.SendMode(twoCtx, "two", ModeAck) }() }},
		expect("two\x04\x1f"),
		send("\x01ACKEOT!!\x1f"), // for "one"
		{run: func() { <-hold }},
	})
	if err := c.SendMode(ctx, "one", ModeAck); err != nil {
		t.Fatalf("SendMode(one) = %v", err)
	}
	if n := c.mustConn(t).Stats().Unsolicited; n != 1 {
		t.Errorf("Unsolicited = %d; want 1", n)
	}
	select {
	case err := <-errs:
		t.Fatalf("SendMode(two) = %v before its acknowledgement", err)
	default:
	}
	cancelTwo()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Errorf("SendMode(two) = %v; want context.Canceled", err)
	}
	close(hold)
	wait(t, done)
}

func (c *Client) mustConn(t testing.TB) *Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		t.Fatal("no connection")
	}
	return c.conn
}

// Bad input from the peer closes the connection with a clear error; the
// client, whose peer broke the protocol, does not reconnect.
func TestV1PeerErrors(t *testing.T) {
	for i, tc := range []struct {
		script []step
		want   error
	}{
		{[]step{send("\x01SETMODE4\x1f")}, ErrPickleRefused},
		{[]step{send("\x01SETMODE5\x1f")}, ErrPickleRefused},
		{[]step{send("\x01SETMODE7\x1f")}, ErrBadControl},
		{[]step{send("\x01WHAT\x1f")}, ErrBadControl},
		{[]step{send("\x01SETMODE2\x1f"), expect("\x01ACKMODCG\x1f"), send("not base85\x1f")}, ErrBadMessage},
		{[]step{send("\x01SETMODE1\x1f"), expect("\x01ACKMODCG\x1f"), send("a\x04b\x04\x1f")}, ErrBadMessage},
	} {
		c, peer := dialPipe(t, WithProtocol(V1))
		done := playScript(peer, append(tc.script, step{close: true}))
		_, err := c.Receive(testCtx(t, 5*time.Second))
		if !errors.Is(err, tc.want) || !errors.Is(err, ErrLost) {
			t.Errorf("%d. Receive = %v; want %v (and ErrLost)", i, err, tc.want)
		}
		wait(t, done)
		c.Close()
		if c.Reconnects() != 0 {
			t.Errorf("%d. the client reconnected after a protocol error", i)
		}
	}
}

func TestScriptedV2Exchange(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	c, peer := dialPipe(t)
	defer c.Close()
	var script []step
	for _, g := range goldenFrames {
		script = append(script, step{expect: unhex(t, g.frame)})
	}
	for _, g := range goldenFrames {
		script = append(script, step{send: unhex(t, g.frame)})
	}
	done := playScript(peer, script)
	for _, g := range goldenFrames {
		if err := c.Send(ctx, g.value); err != nil {
			t.Fatal(err)
		}
	}
	for i, g := range goldenFrames {
		v, err := c.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b, ok := v.([]byte); ok {
			if string(b) != string(g.value.([]byte)) {
				t.Errorf("%d. Receive = %v; want %v", i, v, g.value)
			}
		} else if v != g.value {
			t.Errorf("%d. Receive = %#v; want %#v", i, v, g.value)
		}
	}
	wait(t, done)
	if err := c.SendMode(ctx, "x", ModeAck); !errors.Is(err, ErrWrongProtocol) {
		t.Errorf("SendMode on serpy2 = %v; want ErrWrongProtocol", err)
	}
}

func TestV2PeerErrors(t *testing.T) {
	good := unhex(t, goldenFrames[0].frame)
	badSum := append([]byte{}, good...)
	badSum[6] ^= 0xFF
	badType := append([]byte{}, good...)
	badType[5] = 0x42
	for i, tc := range []struct {
		bytes []byte
		want  error
	}{
		{[]byte("GET / HTTP/1.1\r\n\r\n"), ErrBadMagic},
		{badSum, ErrChecksum},
		{badType, ErrUnknownType},
		{[]byte{0xDE, 0xCA, 0xFE, 0xCA, 0xFE, 0x81, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, ErrFrameTooLarge},
	} {
		c, peer := dialPipe(t)
		done := playScript(peer, []step{{send: tc.bytes}, {close: true}})
		_, err := c.Receive(testCtx(t, 5*time.Second))
		if !errors.Is(err, tc.want) {
			t.Errorf("%d. Receive = %v; want %v", i, err, tc.want)
		}
		wait(t, done)
		c.Close()
	}
}

// Close writes everything Send queued before it closes the connection.
func TestCloseFlushes(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	c, peer := dialPipe(t, WithProtocol(V1))
	var script []step
	for range 200 {
		script = append(script, expect("m\x1f"))
	}
	done := playScript(peer, script)
	for range 200 {
		if err := c.Send(ctx, "m"); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	wait(t, done)
	if err := c.Send(ctx, "late"); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v; want ErrClosed", err)
	}
}

// A broken connection is dialled again after the backoff delay; a message
// of mode 1 that was not acknowledged is sent again on the new connection,
// which starts in mode 0 and so hears the mode again.
func TestReconnectResendsAcknowledged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		network := testutil.NewNetwork()
		ln, err := network.Listen("instrument:7000")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		backoff := compat.Backoff{Initial: 100 * time.Millisecond, Rand: func() float64 { return 0.5 }}
		ctx := context.Background()
		dialed := make(chan time.Time, 16)
		c, err := Dial(ctx, "instrument:7000", WithProtocol(V1), WithBackoff(backoff),
			WithDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				dialed <- time.Now()
				return network.Dial(ctx, addr)
			}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		first, _ := ln.Accept()
		// The first server takes the message and dies before acknowledging
		// it; it stays down for a while.
		oldLn := ln
		done := playScript(first, []step{
			expect("\x01SETMODE1\x1f"), send("\x01ACKMODCG\x1f"),
			expect("reading 17\x04\x1f"),
			{run: func() { oldLn.Close() }, close: true},
		})
		sent := make(chan error, 1)
		go func() { sent <- c.SendMode(ctx, "reading 17", ModeAck) }()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		<-dialed // the first connection
		// The immediate redial fails, and so does the next, 100ms later.
		t1 := <-dialed
		t2 := <-dialed
		if d := t2.Sub(t1); d != 100*time.Millisecond {
			t.Errorf("second redial after %v; want the backoff's 100ms", d)
		}
		ln, err = network.Listen("instrument:7000")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		second, _ := ln.Accept()
		hold := make(chan struct{})
		done = playScript(second, []step{
			expect("\x01SETMODE1\x1f"), send("\x01ACKMODCG\x1f"),
			expect("reading 17\x04\x1f"), send("\x01ACKEOT!!\x1f"),
			{run: func() { <-hold }},
		})
		if err := <-sent; err != nil {
			t.Fatalf("SendMode across a reconnect: %v", err)
		}
		if c.Reconnects() != 1 {
			t.Errorf("Reconnects = %d; want 1", c.Reconnects())
		}
		close(hold)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
}

// With its budget spent, the client ends with ErrLost.
func TestReconnectBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		network := testutil.NewNetwork()
		ln, _ := network.Listen("instrument:7000")
		c, err := Dial(context.Background(), "instrument:7000",
			WithBackoff(compat.Backoff{Retries: 3, Initial: 10 * time.Millisecond, Rand: func() float64 { return 0.5 }}),
			WithDialer(network.Dial))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		peer, _ := ln.Accept()
		ln.Close()
		start := time.Now()
		peer.Close()
		<-c.Done()
		if !errors.Is(c.Err(), ErrLost) {
			t.Errorf("Err = %v; want ErrLost", c.Err())
		}
		// one immediate attempt, then 10, 20 and 40ms before the other three
		if d := time.Since(start); d != 70*time.Millisecond {
			t.Errorf("gave up after %v; want 70ms", d)
		}
		if _, err := c.Receive(context.Background()); !errors.Is(err, ErrLost) {
			t.Errorf("Receive = %v; want ErrLost", err)
		}
		if err := c.Send(context.Background(), 1); !errors.Is(err, ErrLost) {
			t.Errorf("Send = %v; want ErrLost", err)
		}
	})
}

func TestNoAutoRestart(t *testing.T) {
	c, peer := dialPipe(t, WithAutoRestart(false))
	peer.Close()
	<-c.Done()
	if !errors.Is(c.Err(), ErrConnLost) || !errors.Is(c.Err(), ErrLost) {
		t.Errorf("Err = %v; want ErrLost and ErrConnLost", c.Err())
	}
	c.Close()
}

// Go client and Go server, both protocols, every mode.
func TestClientServer(t *testing.T) {
	for _, p := range []Protocol{V1, V2} {
		t.Run(p.String(), func(t *testing.T) {
			ctx := testCtx(t, 10*time.Second)
			srv, err := Listen("127.0.0.1:0", WithProtocol(p))
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			c, err := Dial(ctx, srv.Addr().String(), WithProtocol(p))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conn, err := srv.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			values := []any{"text", []byte{0, 0x1f, 0x04, 0x01, 0xff}}
			if p == V2 {
				values = append(values, int64(-5), 2.5)
			}
			for _, v := range values {
				if err := c.Send(ctx, v); err != nil {
					t.Fatal(err)
				}
			}
			if p == V1 {
				for _, m := range []Mode{ModeAck, ModeB85Ack, ModePlain} {
					if err := c.SendMode(ctx, "m", m); err != nil {
						t.Fatal(err)
					}
				}
			}
			for range values {
				v, err := conn.Receive(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := conn.Send(ctx, v); err != nil { // echo
					t.Fatal(err)
				}
			}
			for i, want := range values {
				v, err := c.Receive(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if p == V1 && i == 0 {
					want = []byte("text")
				}
				if b, ok := want.([]byte); ok {
					if string(v.([]byte)) != string(b) {
						t.Errorf("%d. echo = %q; want %q", i, v, b)
					}
				} else if v != want {
					t.Errorf("%d. echo = %#v; want %#v", i, v, want)
				}
			}
		})
	}
}

func TestServerMaxConns(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	srv, err := Listen("127.0.0.1:0", WithMaxConns(1))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c1, err := Dial(ctx, srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if _, err := srv.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	c2, err := Dial(ctx, srv.Addr().String(), WithAutoRestart(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	<-c2.Done()
	if srv.Rejected() != 1 || len(srv.Conns()) != 1 {
		t.Errorf("Rejected = %d, Conns = %d; want 1, 1", srv.Rejected(), len(srv.Conns()))
	}
}
