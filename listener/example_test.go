package listener_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/listener"
	"github.com/slc-go/slc/mailbox"
	"github.com/slc-go/slc/peer"
)

// owner plays the facade: it spawns the listener and answers each
// connection that passed the hello. This one turns every connection away.
type owner struct {
	props *actor.Props
	asked chan string // the remote name of each connection offered
}

func (o *owner) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		ctx.Spawn(o.props)
	case *listener.Inbound:
		o.asked <- m.Handshake.Remote.Name
		m.Reply <- &wire.ProtocolError{Code: wire.CodeBusy, Reason: "not taking peers"}
	}
}

// A listener actor accepts a connection and runs its handshake, then asks
// its parent to take it. The parent refuses here, so the remote gets a
// REJECT with the code and reason.
func Example() {
	config := func(name string, instance uint64) *peer.Config {
		c := peer.Config{Name: name, Instance: instance, Inbox: mailbox.New(mailbox.Config{}), Timeout: 5 * time.Second}.WithDefaults()
		if err := c.Validate(); err != nil {
			panic(err)
		}
		return &c
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer sys.Shutdown()
	props := listener.Props(ln, listener.Config{Peer: config("robot", 2)})
	asked := make(chan string, 1)
	pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &owner{props: props, asked: asked} }))
	defer func() { sys.Root.StopFuture(pid).Wait() }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	h, err := peer.RunHandshake(context.Background(), conn, config("workstation", 1), true)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	fmt.Println("workstation: hello from", h.Remote.Name)
	f, p, err := h.Reader.ReadFrame()
	if err != nil || f.Type != wire.TypeReject {
		fmt.Println("no REJECT:", f.Type, err)
		return
	}
	cl, err := wire.ParseClose(p)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("listener: offered a connection from", <-asked)
	fmt.Printf("workstation: rejected, %s: %s\n", cl.Code, cl.Reason)
	// Output:
	// workstation: hello from robot
	// listener: offered a connection from workstation
	// workstation: rejected, busy: not taking peers
}
