package spread

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"reflect"
	"runtime"
	"testing"
	"time"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// daemon is a scripted Spread daemon: the test plays its bytes.
type daemon struct {
	t  testing.TB
	ln net.Listener
	c  net.Conn
}

func newDaemon(t testing.TB) *daemon {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &daemon{t: t, ln: ln}
}

func (d *daemon) accept() {
	d.t.Helper()
	c, err := d.ln.Accept()
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	d.c = c
}

func (d *daemon) expect(want []byte) {
	d.t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(d.c, got); err != nil {
		d.t.Fatalf("daemon reading %d bytes: %v", len(want), err)
	}
	if !bytes.Equal(got, want) {
		d.t.Fatalf("daemon read\n% x\nwant\n% x", got, want)
	}
}

func (d *daemon) send(b ...[]byte) {
	d.t.Helper()
	if _, err := d.c.Write(cat(b...)); err != nil {
		d.t.Fatal(err)
	}
}

func (d *daemon) expectEOF() {
	d.t.Helper()
	var b [1]byte
	if n, err := d.c.Read(b[:]); err != io.EOF {
		d.t.Fatalf("daemon read %d bytes, %v; want EOF", n, err)
	}
}

type dialResult struct {
	c   *Client
	err error
}

func dialAsync(ctx context.Context, addr string, opts ...Option) <-chan dialResult {
	ch := make(chan dialResult, 1)
	go func() {
		c, err := Dial(ctx, addr, opts...)
		ch <- dialResult{c, err}
	}()
	return ch
}

// handshake plays the daemon's side of a successful connect of "alice".
func (d *daemon) handshake() {
	d.t.Helper()
	d.accept()
	d.expect(h("04 00 00 01 05 616c696365"))
	d.send([]byte{4}, []byte("NULL"))
	d.expect(AppendAuthChoice(nil))
	d.send([]byte{1}, []byte{4, 0, 5}, []byte{byte(len(me))}, []byte(me))
}

func connect(t testing.TB, d *daemon) *Client {
	t.Helper()
	ch := dialAsync(testCtx(t), d.ln.Addr().String(), WithName("alice"))
	d.handshake()
	r := <-ch
	if r.err != nil {
		t.Fatalf("Dial: %v", r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return r.c
}

// TestScriptedSession plays a whole session: connect, join, membership,
// multicast each way, leave, self-leave, disconnect.
func TestScriptedSession(t *testing.T) {
	ctx := testCtx(t)
	d := newDaemon(t)
	c := connect(t, d)
	if c.PrivateGroup() != me {
		t.Errorf("PrivateGroup() = %q", c.PrivateGroup())
	}
	if maj, min, pat := c.Version(); maj != 4 || min != 0 || pat != 5 {
		t.Errorf("Version() = %d.%d.%d", maj, min, pat)
	}

	if err := c.Join(ctx, "chat"); err != nil {
		t.Fatal(err)
	}
	d.expect(goldenOut[4].want)

	// The daemon: alice alone, then bob joins.
	d.send(cat(h("80 11 00 80"), name32("chat"), h("01000000 80000080 38000000"), name32(me),
		h("01000000 02000000 01000000  01000000 00000000  01000000"), name32(me)))
	d.send(goldenIn[4].in)
	for i, want := range []*Membership{
		{Group: "chat", ViewID: ViewID{1, 2, 1}, Members: []string{me}, Joined: []string{me}, Reason: Join, Index: 0, VSSets: [][]string{{me}}, Local: 0},
		goldenIn[4].want.(*Membership),
	} {
		got, err := c.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%d. Receive =\n%#v\nwant\n%#v", i, got, want)
		}
	}

	if serial, err := c.Multicast(ctx, Agreed|SelfDiscard, "chat", 7, "hi"); err != nil || serial != 1 {
		t.Fatalf("Multicast = %d, %v", serial, err)
	}
	d.expect(goldenOut[7].want)
	if serial, err := c.MulticastGroups(ctx, Safe, []string{"a", "b"}, -1, []byte{0}); err != nil || serial != 2 {
		t.Fatalf("MulticastGroups = %d, %v", serial, err)
	}
	d.expect(goldenOut[8].want)
	if got := c.Members("chat"); !reflect.DeepEqual(got, []string{me, "#bob#d1"}) {
		t.Errorf("Members(chat) = %v", got)
	}

	d.send(goldenIn[0].in)
	if got, err := c.Receive(ctx); err != nil || !reflect.DeepEqual(got, goldenIn[0].want) {
		t.Errorf("Receive = %#v, %v", got, err)
	}

	// A network change with no VS-set names: Joined and Left come from
	// the previous view (alice, bob) -> (alice, carol).
	d.send(cat(h("80 18 00 80"), name32("chat"), h("02000000 80000080 0c000000"), name32(me), name32("#carol#d2"),
		h("03000000 04000000 00000000")))
	got, err := c.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mb := got.(*Membership)
	if !reflect.DeepEqual(mb.Joined, []string{"#carol#d2"}) || !reflect.DeepEqual(mb.Left, []string{"#bob#d1"}) || mb.Reason != Network {
		t.Errorf("network membership = %v", mb)
	}

	if err := c.Leave(ctx, "chat"); err != nil {
		t.Fatal(err)
	}
	d.expect(goldenOut[5].want)
	d.send(goldenIn[9].in) // self-leave
	got, err = c.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if mb := got.(*Membership); mb.Reason != Leave || mb.Members != nil || !reflect.DeepEqual(mb.Left, []string{me}) {
		t.Errorf("self-leave = %#v", mb)
	}
	if got := c.Members("chat"); got != nil {
		t.Errorf("Members(chat) after leaving = %v", got)
	}
	if _, ok := c.TryReceive(); ok {
		t.Error("TryReceive found a delivery")
	}

	// Poll counts what waits.
	d.send(goldenIn[0].in, goldenIn[1].in)
	if _, err := c.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	// The second is read by the reader once the first is taken; wait for
	// it with Receive rather than polling in a loop.
	if _, err := c.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if n := c.Poll(); n != 0 {
		t.Errorf("Poll() = %d; want 0", n)
	}

	// Close sends KILL_MESS.
	c.Close()
	d.expect(goldenOut[6].want)
	d.expectEOF()
	if _, err := c.Receive(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Receive after Close = %v", err)
	}
	if err := c.Join(ctx, "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after Close = %v", err)
	}
}

func TestPoll(t *testing.T) {
	ctx := testCtx(t)
	d := newDaemon(t)
	c := connect(t, d)
	d.send(goldenIn[0].in, goldenIn[0].in, goldenIn[0].in)
	// Wait for the reader to queue all three: a state to reach, not a
	// time to sleep.
	for c.Poll() < 3 {
		select {
		case <-c.Done():
			t.Fatal(c.Err())
		case <-ctx.Done():
			t.Fatal("Poll never reached 3")
		default:
		}
		// The reader is filling the inbox; yield rather than sleep.
		runtimeGosched()
	}
	if n := c.Poll(); n != 3 {
		t.Errorf("Poll() = %d; want 3", n)
	}
}

// TestScriptedRefusals: the daemon's error codes and broken handshakes.
func TestScriptedRefusals(t *testing.T) {
	for _, tt := range []struct {
		name   string
		script func(d *daemon)
		want   error
	}{
		{"refused before auth", func(d *daemon) { d.send([]byte{0xfa}) }, &Error{Code: RejectNotUnique}},
		{"no NULL auth", func(d *daemon) { d.send([]byte{3}, []byte("IP ")) }, ErrNoNullAuth},
		{"auth rejected", func(d *daemon) {
			d.send([]byte{5}, []byte("NULL "))
			d.expect(AppendAuthChoice(nil))
			d.send([]byte{0xf7}) // -9
		}, &Error{Code: RejectAuth}},
		{"version 3", func(d *daemon) {
			d.send([]byte{4}, []byte("NULL"))
			d.expect(AppendAuthChoice(nil))
			d.send([]byte{1, 3, 2, 0})
		}, ErrProtocol},
		{"bad private name length", func(d *daemon) {
			d.send([]byte{4}, []byte("NULL"))
			d.expect(AppendAuthChoice(nil))
			d.send([]byte{1, 4, 0, 5, 0})
		}, ErrProtocol},
		{"auth list too long", func(d *daemon) { d.send([]byte{91}) }, ErrProtocol},
		{"empty auth list", func(d *daemon) { d.send([]byte{0}) }, ErrNoNullAuth},
		{"cut", func(d *daemon) {
			d.send([]byte{4}, []byte("NU"))
			d.c.Close()
		}, io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDaemon(t)
			ch := dialAsync(testCtx(t), d.ln.Addr().String(), WithName("alice"))
			d.accept()
			d.expect(h("04 00 00 01 05 616c696365"))
			tt.script(d)
			r := <-ch
			if !errors.Is(r.err, tt.want) {
				t.Errorf("Dial = %v; want %v", r.err, tt.want)
			}
		})
	}
}

// TestScriptedBadMessages: a message that breaks the protocol closes the
// session with ErrProtocol; a broken stream with ErrConnLost.
func TestScriptedBadMessages(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
		want error
	}{
		{"negative length", cat(h("90000080"), name32("x"), h("00000000 80000080 ffffffff")), ErrProtocol},
		{"neither kind", cat(h("80000080"), name32("x"), h("00000000 80000080 00000000")), ErrProtocol},
		{"cut header", h("90000080"), ErrConnLost},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			d := newDaemon(t)
			c := connect(t, d)
			d.send(tt.in)
			if tt.want == ErrConnLost {
				d.c.Close()
			}
			if _, err := c.Receive(ctx); !errors.Is(err, tt.want) {
				t.Errorf("Receive = %v; want %v", err, tt.want)
			}
		})
	}
}

func TestSendChecks(t *testing.T) {
	ctx := testCtx(t)
	d := newDaemon(t)
	c := connect(t, d)
	for i, err := range []error{
		c.Join(ctx, ""),
		c.Join(ctx, "#alice#d1"),
		c.Leave(ctx, "a b"),
		second(c.Multicast(ctx, Agreed|Safe, "g", 0, "x")),
		second(c.Multicast(ctx, 0, "g", 0, "x")),
		second(c.Multicast(ctx, FIFO, "g", 0, 42)),
		second(c.MulticastGroups(ctx, FIFO, nil, 0, "x")),
	} {
		if err == nil {
			t.Errorf("%d. bad send succeeded", i)
		}
	}
	if _, err := c.Multicast(ctx, FIFO, "g", 0, make([]byte, MaxMessageBody-31)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Multicast of %d bytes = %v; want ErrTooLarge", MaxMessageBody-31, err)
	}
	if _, err := Dial(ctx, d.ln.Addr().String(), WithPriority(2)); err == nil {
		t.Error("WithPriority(2) accepted")
	}
	if _, err := Dial(ctx, d.ln.Addr().String(), WithName("far too long")); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Dial with a long name = %v", err)
	}
	// Nothing reached the daemon: the next bytes it reads are a join.
	if err := c.Join(ctx, "ok"); err != nil {
		t.Fatal(err)
	}
	d.expect(AppendMessage(nil, Header{Type: typeJoin, Sender: me}, []string{"ok"}, nil))
	// A private group can be sent to (not joined).
	if _, err := c.Multicast(ctx, Reliable, "#bob#d1", 3, "psst"); err != nil {
		t.Fatal(err)
	}
	d.expect(AppendMessage(nil, Header{Type: uint32(Reliable), Sender: me, Hint: 3 << 8}, []string{"#bob#d1"}, []byte("psst")))
}

func runtimeGosched() { runtime.Gosched() }

func second(_ uint64, err error) error { return err }
