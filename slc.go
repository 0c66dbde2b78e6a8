package slc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/mailbox"
	"github.com/slc-go/slc/peer"
	"github.com/slc-go/slc/store"
	"github.com/slc-go/slc/supervisor"
)

// PeerID is a node's unique name.
type PeerID = peer.ID

// MsgID identifies a sent message; IDs increase for the life of a node.
type MsgID = peer.MsgID

// Message is a received message: From, ID, Type, Body (a T for types
// registered with Register), Raw (the serialized bytes) and Err (a body
// that could not be decoded).
type Message = peer.Message

// Communicator is a node: it listens, connects, sends and receives typed
// messages over supervised connections that reconnect by themselves.
//
// All methods are safe for concurrent use by multiple goroutines. Every
// call that can block takes a context; a context without a deadline waits
// as long as it takes.
type Communicator struct {
	sys    *actor.ActorSystem
	ownSys bool
	core   *actors.Core
	pid    *actor.PID
	name   PeerID
	store  *store.Store

	closeOnce sync.Once
	closeErr  error
}

// New starts a communicator. It runs its actors on its own actor system
// unless WithActorSystem gives one.
func New(opts ...Option) (*Communicator, error) {
	cfg := DefaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	st, err := openStore(&cfg, logger)
	if err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = defaultName()
	}
	if cfg.Instance == 0 {
		cfg.Instance = randomInstance()
	}
	if err := cfg.Validate(); err != nil {
		if st != nil {
			st.Close()
		}
		return nil, err
	}
	c := &Communicator{sys: cfg.ActorSystem, name: PeerID(cfg.Name), store: st}
	if c.sys == nil {
		// protoactor logs to stderr in colour by default: route its logs
		// to the user's logger, or nowhere.
		// A request that reaches a stopped actor gets a DeadLetterResponse;
		// logging it as well would only start protoactor's log throttle.
		c.sys = actor.NewActorSystem(
			actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }),
			actor.WithDeadLetterRequestLogging(false))
		c.ownSys = true
	}
	pc := cfg.peerConfig()
	pc.Logger = logger
	retries := cfg.Retries
	switch retries {
	case 0:
		retries = supervisor.NoRetries
	case RetryForever:
		retries = supervisor.Forever
	}
	core, pid, err := actors.Start(c.sys, actors.Config{
		Peer:          pc,
		Inbox:         mailbox.Config{MaxBytes: cfg.InboxBytes, MaxMessages: cfg.InboxMessages},
		Supervisor:    cfg.Supervisor,
		Retries:       retries,
		MaxHandshakes: cfg.MaxHandshakes,
		MaxPeers:      cfg.MaxPeers,
		Discovery:     actors.DiscoveryConfig{Interfaces: cfg.Interfaces},
		Store:         st,
	})
	if err != nil {
		if c.ownSys {
			c.sys.Shutdown()
		}
		if st != nil {
			st.Close()
		}
		return nil, err
	}
	c.core, c.pid = core, pid
	return c, nil
}

// Name returns this node's name.
func (c *Communicator) Name() PeerID { return c.name }

// PID returns the facade actor's PID, for actor users: send it the
// commands of package actors.
func (c *Communicator) PID() *actor.PID { return c.pid }

// ActorSystem returns the actor system; its EventStream carries the events
// of package actors.
func (c *Communicator) ActorSystem() *actor.ActorSystem { return c.sys }

// request sends a command to the facade and waits for its reply.
func (c *Communicator) request(ctx context.Context, msg any) (any, error) {
	if c.core.Closed() {
		return nil, ErrClosed
	}
	r := actors.NewReply(c.sys)
	defer r.Close()
	r.Request(c.pid, msg)
	return r.Wait(ctx)
}

// Listen accepts connections on addr: "host:port" (port 0 lets the system
// choose), "[::1]:port" or "unix:/path". It returns the bound address.
func (c *Communicator) Listen(ctx context.Context, addr string) (net.Addr, error) {
	res, err := c.request(ctx, &actors.Listen{Addr: addr})
	if err != nil {
		return nil, err
	}
	r := res.(*actors.ListenResult)
	return r.Addr, r.Err
}

// Unlisten closes the listener on addr (as Listen returned it). Sessions
// it accepted go on.
func (c *Communicator) Unlisten(ctx context.Context, addr net.Addr) error {
	res, err := c.request(ctx, &actors.Unlisten{Addr: peer.FormatAddr(addr)})
	if err != nil {
		return err
	}
	return res.(*actors.Unlistened).Err
}

// Connect connects to the node at addr ("host:port" or "unix:/path") and
// returns its name once the handshake is done. Each attempt is bounded by
// the Timeout option; failed attempts are retried with backoff within the
// retry budget and ctx. Connecting to a node already connected returns
// its name at once.
func (c *Communicator) Connect(ctx context.Context, addr string) (PeerID, error) {
	if c.core.Closed() {
		return "", ErrClosed
	}
	timeout := 24 * time.Hour
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
		if timeout <= 0 {
			return "", ctx.Err()
		}
	}
	r := actors.NewReply(c.sys)
	defer r.Close()
	r.Request(c.pid, &actors.Connect{Addr: addr, Timeout: timeout})
	res, err := r.Wait(ctx)
	if err != nil {
		if ctx.Err() != nil {
			// Abandon the attempt, and take the facade's answer to the
			// cancel so that it does not end up as a dead letter.
			c.sys.Root.Send(c.pid, &actors.CancelConnect{ReplyTo: r.PID()})
			wctx, cancel := context.WithTimeout(context.Background(), time.Second)
			r.Wait(wctx)
			cancel()
		}
		return "", err
	}
	cr := res.(*actors.ConnectResult)
	return cr.Peer, cr.Err
}

// Send serializes v and sends it to the named peers, or to every peer when
// none are named. It returns when the message is queued for each of them:
// at once, unless a peer has BufferCap unacknowledged bytes, in which case
// Send waits for room or for ctx. A message to a peer that is reconnecting
// is queued and sent when the session resumes. Send fails for an unknown
// or lost peer; when some targets took the message and others did not, the
// error is a *SendError and the ID is valid for the others.
func (c *Communicator) Send(ctx context.Context, v any, to ...PeerID) (MsgID, error) {
	return c.core.Send(ctx, v, to...)
}

// SendRaw sends b as it is, without serialization. Receivers get it in
// Message.Raw (and Body). b may be reused once SendRaw returns.
func (c *Communicator) SendRaw(ctx context.Context, b []byte, to ...PeerID) (MsgID, error) {
	return c.core.SendRaw(ctx, b, to...)
}

// WaitAcknowledged blocks until the message is acknowledged by every named
// peer, or by every peer it was sent to. A peer acknowledges a message once
// it is in that peer's mailbox. It fails when a target's session ends
// first (the error names the peer) or ctx ends.
func (c *Communicator) WaitAcknowledged(ctx context.Context, id MsgID, to ...PeerID) error {
	return c.core.WaitAcknowledged(ctx, id, to...)
}

// IsAcknowledged reports whether the message is acknowledged by every
// named peer (or every peer it was sent to). Acknowledgements are
// cumulative per peer.
func (c *Communicator) IsAcknowledged(id MsgID, to ...PeerID) bool {
	return c.core.IsAcknowledged(id, to...)
}

// Receive returns the next message, from the named peers or from any. It
// waits until one arrives or ctx ends. Messages from one peer come in the
// order they were sent; across peers, in the order they arrived.
func (c *Communicator) Receive(ctx context.Context, from ...PeerID) (Message, error) {
	var m Message
	err := c.core.Inbox().ReceiveInto(ctx, &m, from...)
	if errors.Is(err, mailbox.ErrClosed) {
		err = ErrClosed
	}
	return m, err
}

// TryReceive returns the next waiting message, if there is one.
func (c *Communicator) TryReceive(from ...PeerID) (Message, bool) {
	return c.core.Inbox().TryReceive(from...)
}

// Handle routes the messages whose type is one of types (names given to
// Register) to fn instead of the mailbox, from every peer, in order per
// sender. It is how a layer built on a communicator (remote calls, a bus)
// takes its own messages while the application keeps receiving the rest.
// fn runs on the receiving connection's goroutine: it must not block for
// long, or that connection stops reading. Messages of those types that
// arrived before Handle was called stay in the mailbox, so call it before
// connecting. cancel stops the routing; it is idempotent.
func (c *Communicator) Handle(fn func(Message), types ...string) (cancel func()) {
	return c.core.Inbox().SubscribeTypes(mailbox.SubscriberFunc(fn), types...)
}

// Pending returns how many messages wait in the mailbox, from the named
// peers or in all.
func (c *Communicator) Pending(from ...PeerID) int {
	return c.core.Inbox().Len(from...)
}

// Forward sends the messages waiting from one peer on to another, as they
// are, and returns how many it forwarded. Each leaves the mailbox only once
// it is queued for the target.
func (c *Communicator) Forward(ctx context.Context, from, to PeerID) (int, error) {
	return c.core.Forward(ctx, from, to)
}

// Disconnect waits until everything sent to the named peers (or to every
// peer) is acknowledged, or ctx ends, then says goodbye and ends their
// sessions. Messages still unacknowledged are dropped; they are listed in
// the PeerDisconnected event and the error reports the flush failure.
func (c *Communicator) Disconnect(ctx context.Context, to ...PeerID) error {
	flushErr := c.core.Flush(ctx, to...)
	if err := c.core.DisconnectNow(c.sys, c.pid, to); err != nil {
		return err
	}
	if flushErr != nil {
		return fmt.Errorf("slc: disconnected before every message was acknowledged: %w", flushErr)
	}
	return nil
}

// Peers returns the names of the connected or reconnecting peers.
func (c *Communicator) Peers() []PeerID { return c.core.PeerIDs() }

// PeerStats returns a peer's counters: unacknowledged bytes, the last
// message sent and acknowledged, duplicates dropped.
func (c *Communicator) PeerStats(id PeerID) (peer.Stats, bool) {
	s := c.core.Session(id)
	if s == nil {
		return peer.Stats{}, false
	}
	return s.Stats(), true
}

// Close says goodbye to every peer, stops every actor and goroutine the
// communicator started, and closes the mailbox. It is idempotent. Call
// Disconnect first to wait for unacknowledged messages.
func (c *Communicator) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.core.Stop()
		if c.ownSys {
			c.sys.Shutdown()
		}
		if c.store != nil {
			if err := c.store.Close(); c.closeErr == nil {
				c.closeErr = err
			}
		}
	})
	return c.closeErr
}

// Register associates the Go type T with a wire name. Messages whose body
// is a T (or *T) carry the name, and a receiver that registered the same
// name gets a T value in Message.Body. Register panics if the name or the
// type is already registered differently, like encoding/gob.Register; call
// it during initialization.
func Register[T any](name string) {
	if err := codec.RegisterType[T](name); err != nil {
		panic(err)
	}
}
