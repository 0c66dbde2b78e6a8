// Command supervision shows how slc's supervision reconnects a broken
// connection, with a strategy of your own, while you watch the events.
//
// A workstation connects to a camera through a small TCP relay that the
// example controls. The relay goes down: it resets the connection and
// refuses new ones. The workstation's supervisor (a supervisor.Backoff
// with short, fixed delays) redials, and each failed attempt is a
// PeerReconnecting event. Meanwhile the workstation keeps sending: its
// messages wait in the session. After three failed attempts the relay comes
// back; the next attempt resumes the session, and every message arrives
// exactly once, in order. It ends by itself.
//
//	go run ./examples/supervision
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/supervisor"
)

// Command is what the workstation sends.
type Command struct {
	Seq    int
	Action string
}

func init() { slc.Register[Command]("example.Command") }

const commands = 10

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	camera, err := slc.New(slc.WithName("camera"))
	if err != nil {
		return err
	}
	defer camera.Close()
	addr, err := camera.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	relay, err := newRelay(addr.String())
	if err != nil {
		return err
	}
	defer relay.Close()

	// The strategy: reconnect after 30ms, 60ms, then every 100ms, without
	// jitter, and give up after 50 consecutive failed attempts.
	strategy := &supervisor.Backoff{
		Initial:    30 * time.Millisecond,
		Multiplier: 2,
		Max:        100 * time.Millisecond,
		Jitter:     -1, // no jitter: the same delays every time
		Retries:    50,
	}
	station, err := slc.New(slc.WithName("workstation"), slc.WithSupervisor(strategy))
	if err != nil {
		return err
	}
	defer station.Close()

	// Watch the workstation's connection events. Handlers run on slc's
	// goroutines and must not block: hand the events to a channel.
	events := make(chan any, 64)
	es := station.ActorSystem().EventStream
	sub := es.Subscribe(func(ev any) {
		switch e := ev.(type) {
		case *actors.PeerConnected:
			fmt.Printf("event: PeerConnected peer=%s resumed=%v\n", e.Peer, e.Resumed)
		case *actors.PeerDisconnected:
			fmt.Printf("event: PeerDisconnected peer=%s reconnecting=%v\n", e.Peer, e.Reconnecting)
		case *actors.PeerReconnecting:
			fmt.Printf("event: PeerReconnecting attempt=%d delay=%v\n", e.Attempt, e.Delay)
		case *actors.PeerLost:
			fmt.Printf("event: PeerLost peer=%s err=%v\n", e.Peer, e.Err)
		default:
			return
		}
		select {
		case events <- ev:
		default:
		}
	})
	defer es.Unsubscribe(sub)

	peer, err := station.Connect(ctx, relay.Addr())
	if err != nil {
		return err
	}
	send := func(seq int) (slc.MsgID, error) {
		return station.Send(ctx, Command{Seq: seq, Action: "expose"}, peer)
	}
	for seq := 1; seq <= commands/2; seq++ {
		if _, err := send(seq); err != nil {
			return err
		}
	}

	fmt.Println("relay: down")
	relay.Down()
	// Sends to a reconnecting peer are queued in its session.
	var last slc.MsgID
	for seq := commands/2 + 1; seq <= commands; seq++ {
		if last, err = send(seq); err != nil {
			return err
		}
	}
	if err := waitFor(ctx, events, func(ev any) bool {
		r, ok := ev.(*actors.PeerReconnecting)
		return ok && r.Attempt >= 3
	}); err != nil {
		return err
	}
	fmt.Println("relay: up")
	relay.Up()
	if err := waitFor(ctx, events, func(ev any) bool {
		c, ok := ev.(*actors.PeerConnected)
		return ok && c.Resumed
	}); err != nil {
		return err
	}

	if err := station.WaitAcknowledged(ctx, last, peer); err != nil {
		return err
	}
	for want := 1; want <= commands; want++ {
		m, err := camera.Receive(ctx)
		if err != nil {
			return err
		}
		if c := m.Body.(Command); c.Seq != want {
			return fmt.Errorf("received command %d, want %d", c.Seq, want)
		}
	}
	if m, ok := camera.TryReceive(); ok {
		return fmt.Errorf("a duplicate arrived: %+v", m.Body)
	}
	fmt.Printf("supervision: reconnected; all %d commands arrived exactly once, in order\n", commands)
	return station.Disconnect(ctx)
}

// waitFor takes events until one matches.
func waitFor(ctx context.Context, events <-chan any, match func(any) bool) error {
	for {
		select {
		case ev := <-events:
			if match(ev) {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// relay forwards TCP connections to a target. While it is down it resets
// the connections it carries and closes new ones at once, as a broken
// network path would.
type relay struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func newRelay(target string) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	r.wg.Go(r.accept)
	return r, nil
}

func (r *relay) Addr() string { return r.ln.Addr().String() }

// Down resets every connection and refuses new ones until Up.
func (r *relay) Down() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = true
	for c := range r.conns {
		c.(*net.TCPConn).SetLinger(0) // close with a reset
		c.Close()
	}
}

// Up relays new connections again.
func (r *relay) Up() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = false
}

func (r *relay) accept() {
	for {
		client, err := r.ln.Accept()
		if err != nil {
			return // closed
		}
		r.wg.Go(func() { r.serve(client) })
	}
}

func (r *relay) serve(client net.Conn) {
	r.mu.Lock()
	down := r.down
	r.mu.Unlock()
	if down {
		client.Close()
		return
	}
	server, err := net.Dial("tcp", r.target)
	if err != nil {
		client.Close()
		return
	}
	r.mu.Lock()
	r.conns[client], r.conns[server] = struct{}{}, struct{}{}
	r.mu.Unlock()
	var both sync.WaitGroup
	for _, p := range [][2]net.Conn{{client, server}, {server, client}} {
		both.Go(func() {
			io.Copy(p[0], p[1])
			p[0].Close()
			p[1].Close()
		})
	}
	both.Wait()
	r.mu.Lock()
	delete(r.conns, client)
	delete(r.conns, server)
	r.mu.Unlock()
}

// Close stops the relay and waits for its goroutines.
func (r *relay) Close() error {
	err := r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}
