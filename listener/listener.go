package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
)

// DefaultMaxHandshakes bounds the connections a listener handshakes at once.
const DefaultMaxHandshakes = 256

// Inbound asks the owner of the sessions (the listener's parent) to take a
// connection that passed the hello. The owner answers on Reply, which is
// buffered so the answer never blocks: nil means it took the connection
// (and must close it in the end); an error is sent to the remote as a
// REJECT and the connection is closed.
type Inbound struct {
	Handshake *peer.Handshake
	Reply     chan<- error
}

// Config configures a listener actor.
type Config struct {
	// Peer holds the node's settings: handshake timeout, transport,
	// security and codecs.
	Peer *peer.Config
	// MaxHandshakes bounds the handshakes in progress; a connection past
	// it is closed at once (DefaultMaxHandshakes when 0).
	MaxHandshakes int
	// Rejected, if set, is called once for every connection that fails
	// before it is handed over: bad preamble, failed handshake, rejection
	// by the owner, too many handshakes. name is the node name from the
	// hello when one arrived. It runs on the handshake's goroutine.
	Rejected func(addr, name string, err error)
}

// Props returns the props of a listener actor serving ln. On a restart
// the actor listens again on ln's address.
func Props(ln net.Listener, cfg Config) *actor.Props {
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes
	}
	addr := peer.FormatAddr(ln.Addr())
	first := ln
	var mu sync.Mutex
	return actor.PropsFromProducer(func() actor.Actor {
		mu.Lock()
		defer mu.Unlock()
		a := &Actor{cfg: cfg, addr: addr, ln: first}
		first = nil
		return a
	})
}

// Actor accepts connections and runs the handshake of each in a tracked
// goroutine, then hands the connection to its parent.
type Actor struct {
	cfg    Config
	addr   string
	ln     net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ErrAcceptFailed wraps a listener that stopped accepting on its own.
var ErrAcceptFailed = errors.New("slc: listener stopped accepting")

type acceptFailed struct{ err error }

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if a.ln == nil {
			ln, err := a.cfg.Peer.Transport.Listen(context.Background(), a.addr)
			if err != nil {
				panic(fmt.Errorf("%w: listen again on %s: %v", ErrAcceptFailed, a.addr, err))
			}
			a.ln = ln
		}
		a.start(ctx)
	case *acceptFailed:
		panic(fmt.Errorf("%w on %s: %v", ErrAcceptFailed, a.addr, m.err))
	case *actor.Restarting, *actor.Stopping:
		a.stop()
	}
}

// Addr returns the address the actor listens on.
func (a *Actor) Addr() string { return a.addr }

func (a *Actor) start(ctx actor.Context) {
	hctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	self, sys, parent := ctx.Self(), ctx.ActorSystem(), ctx.Parent()
	sem := make(chan struct{}, a.cfg.MaxHandshakes)
	ln := a.ln
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		var delay time.Duration
		for {
			nc, err := ln.Accept()
			if err != nil {
				if hctx.Err() != nil {
					return
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
					// Out of file descriptors and the like: back off, as
					// net/http does, rather than spin.
					delay = min(max(delay*2, 5*time.Millisecond), time.Second)
					select {
					case <-time.After(delay):
					case <-hctx.Done():
						return
					}
					continue
				}
				sys.Root.Send(self, &acceptFailed{err: err})
				return
			}
			delay = 0
			select {
			case sem <- struct{}{}:
			default:
				addr := peer.FormatAddr(nc.RemoteAddr())
				nc.Close()
				a.rejected(addr, "", &wire.ProtocolError{Code: wire.CodeBusy, Reason: fmt.Sprintf("more than %d handshakes in progress", a.cfg.MaxHandshakes)})
				continue
			}
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				defer func() { <-sem }()
				a.handshake(hctx, sys, parent, nc)
			}()
		}
	}()
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (a *Actor) handshake(ctx context.Context, sys *actor.ActorSystem, owner *actor.PID, nc net.Conn) {
	addr := peer.FormatAddr(nc.RemoteAddr())
	hs, err := peer.RunHandshake(ctx, nc, a.cfg.Peer, false)
	if err != nil {
		name := ""
		if hs != nil && hs.Remote != nil {
			name = hs.Remote.Name
		}
		a.rejected(addr, name, err)
		return
	}
	reply := make(chan error, 1)
	sys.Root.Send(owner, &Inbound{Handshake: hs, Reply: reply})
	select {
	case err = <-reply:
	case <-ctx.Done():
		// Shutting down. The owner may have taken the connection
		// already: then it is the session's to close.
		if hs.Abandon() {
			hs.Reject(wire.CodeShutdown, "node is shutting down")
			a.rejected(addr, hs.Remote.Name, fmt.Errorf("handshake: %w", ctx.Err()))
		}
		return
	case <-time.After(a.cfg.Peer.Timeout):
		err = &wire.ProtocolError{Code: wire.CodeBusy, Reason: "node did not take the connection in time"}
	}
	if err != nil {
		if !hs.Abandon() {
			// The owner took the connection after all (it answered
			// late): it is served, not refused.
			return
		}
		if pe, ok := wire.AsProtocolError(err); ok {
			hs.Reject(pe.Code, pe.Reason)
		} else {
			hs.Reject(wire.CodeInternal, err.Error())
		}
		a.rejected(addr, hs.Remote.Name, err)
	}
}

func (a *Actor) rejected(addr, name string, err error) {
	a.cfg.Peer.Logger.Info("slc: connection rejected", "remote", addr, "name", name, "err", err)
	if a.cfg.Rejected != nil {
		a.cfg.Rejected(addr, name, err)
	}
}

func (a *Actor) stop() {
	if a.cancel != nil {
		a.cancel()
	}
	if a.ln != nil {
		a.ln.Close()
		a.ln = nil
	}
	a.wg.Wait()
}

// IgnoreDeadLetterLogging: an Inbound that reaches a stopped owner is
// expected during shutdown; the handshake goroutine handles it.
func (*Inbound) IgnoreDeadLetterLogging()      {}
func (*acceptFailed) IgnoreDeadLetterLogging() {}
