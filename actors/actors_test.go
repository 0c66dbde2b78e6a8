package actors_test

import (
	"context"
	"errors"
	"github.com/slc-go/slc/internal/testutil"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/peer"
	"github.com/slc-go/slc/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testutil.LeakOptions()...) }

type Ping struct{ N int }

func init() { slc.Register[Ping]("actors_test.Ping") }

func node(t *testing.T, name string, opts ...slc.Option) *slc.Communicator {
	t.Helper()
	c, err := slc.New(append([]slc.Option{slc.WithName(name), slc.WithTimeout(2 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func request[R any](t *testing.T, c *slc.Communicator, msg any) R {
	t.Helper()
	res, err := c.ActorSystem().Root.RequestFuture(c.PID(), msg, 5*time.Second).Result()
	if err != nil {
		t.Fatalf("%T: %v", msg, err)
	}
	r, ok := res.(R)
	if !ok {
		t.Fatalf("%T answered %T", msg, res)
	}
	return r
}

// An actor user drives a communicator with messages only: listen, connect,
// send, subscribe, acknowledgements, peers.
func TestActorAPI(t *testing.T) {
	a := node(t, "a")
	b := node(t, "b")
	ln := request[*actors.ListenResult](t, a, &actors.Listen{Addr: "127.0.0.1:0"})
	if ln.Err != nil {
		t.Fatal(ln.Err)
	}
	cr := request[*actors.ConnectResult](t, b, &actors.Connect{Addr: ln.Addr.String()})
	if cr.Err != nil || cr.Peer != "a" {
		t.Fatalf("Connect = %+v", cr)
	}

	// A subscriber actor on a gets the messages pushed to it, in order.
	got := make(chan peer.Message, 100)
	sub := a.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if r, ok := ctx.Message().(*actors.Received); ok {
			got <- r.Message
		}
	}))
	request[*actors.Subscribed](t, a, &actors.Subscribe{Subscriber: sub})

	var last peer.MsgID
	for i := 1; i <= 20; i++ {
		sr := request[*actors.SendResult](t, b, &actors.Send{To: []peer.ID{"a"}, Body: Ping{N: i}})
		if sr.Err != nil {
			t.Fatal(sr.Err)
		}
		if sr.ID <= last {
			t.Fatalf("message IDs not increasing: %d after %d", sr.ID, last)
		}
		last = sr.ID
	}
	raw := request[*actors.SendResult](t, b, &actors.Send{Body: []byte("raw"), Raw: true})
	if raw.Err != nil {
		t.Fatal(raw.Err)
	}
	for i := 1; i <= 20; i++ {
		select {
		case m := <-got:
			if p, ok := m.Body.(Ping); !ok || p.N != i {
				t.Fatalf("subscriber got %+v; want Ping %d", m.Body, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("subscriber got %d of 20 messages", i-1)
		}
	}
	select {
	case m := <-got:
		if string(m.Raw) != "raw" {
			t.Fatalf("raw message arrived as %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("raw message not pushed")
	}
	if a.Pending() != 0 {
		t.Fatalf("%d messages queued although a subscriber takes them", a.Pending())
	}
	ack := request[*actors.AckResult](t, b, &actors.WaitAcknowledged{ID: raw.ID, Timeout: 5 * time.Second})
	if ack.Err != nil {
		t.Fatal(ack.Err)
	}
	if st := request[*actors.AckStatus](t, b, &actors.IsAcknowledged{ID: raw.ID, Peers: []peer.ID{"a"}}); !st.Acknowledged {
		t.Fatal("IsAcknowledged false after WaitAcknowledged")
	}
	peers := request[*actors.Peers](t, b, &actors.GetPeers{})
	if len(peers.Peers) != 1 || peers.Peers[0].ID != "a" || peers.Peers[0].State != peer.StateConnected {
		t.Fatalf("GetPeers = %+v", peers)
	}

	// After Unsubscribe, messages queue for Receive again.
	request[*actors.Unsubscribed](t, a, &actors.Unsubscribe{Subscriber: sub})
	if sr := request[*actors.SendResult](t, b, &actors.Send{Body: Ping{N: 99}}); sr.Err != nil {
		t.Fatal(sr.Err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := a.Receive(ctx)
	if err != nil || m.Body.(Ping).N != 99 {
		t.Fatalf("after unsubscribe: %+v, %v", m, err)
	}
	a.ActorSystem().Root.Stop(sub)

	// Errors come back in the reply.
	bad := request[*actors.SendResult](t, b, &actors.Send{To: []peer.ID{"nobody"}, Body: Ping{}})
	if !errors.Is(bad.Err, slc.ErrUnknownPeer) {
		t.Fatalf("send to an unknown peer = %v", bad.Err)
	}
	dr := request[*actors.DisconnectResult](t, b, &actors.Disconnect{Timeout: 5 * time.Second})
	if dr.Err != nil {
		t.Fatal(dr.Err)
	}
	if len(b.Peers()) != 0 {
		t.Fatalf("peers after Disconnect: %v", b.Peers())
	}
}

// A subscriber that stops is unsubscribed: messages queue again.
func TestSubscriberStops(t *testing.T) {
	a := node(t, "a")
	b := node(t, "b")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, err := a.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Connect(ctx, addr.String()); err != nil {
		t.Fatal(err)
	}
	sub := a.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	request[*actors.Subscribed](t, a, &actors.Subscribe{Subscriber: sub, From: []peer.ID{"b"}})
	if err := a.ActorSystem().Root.StopFuture(sub).Wait(); err != nil {
		t.Fatal(err)
	}
	// The facade learns of the stop through its watch; once it has, a
	// message queues instead of going to the dead subscriber.
	deadline := time.Now().Add(5 * time.Second)
	for {
		id, err := b.Send(ctx, Ping{N: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.WaitAcknowledged(ctx, id); err != nil {
			t.Fatal(err)
		}
		if a.Pending() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("messages still go to a stopped subscriber")
		}
	}
}

// With a store, the reader's buffer defaults to DefaultReadBufferStored
// (each batch read is a commit); a size the caller chose is kept, and
// without a store the default is DefaultReadBuffer.
func TestReadBufferWithStore(t *testing.T) {
	for _, c := range []struct {
		name  string
		store bool
		set   int
		want  int
	}{
		{"no store", false, 0, peer.DefaultReadBuffer},
		{"store", true, 0, peer.DefaultReadBufferStored},
		{"store, chosen size", true, 64 << 10, 64 << 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
				return slog.New(slog.DiscardHandler)
			}))
			defer sys.Shutdown()
			cfg := actors.Config{Peer: peer.Config{Name: "rb", Instance: 1, ReadBuffer: c.set}}
			if c.store {
				st, err := store.Open(t.TempDir(), "rb", store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				cfg.Store, cfg.Peer.Instance = st, st.Instance()
			}
			core, _, err := actors.Start(sys, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer core.Stop()
			if got := core.Config().ReadBuffer; got != c.want {
				t.Errorf("ReadBuffer %d, want %d", got, c.want)
			}
		})
	}
}
