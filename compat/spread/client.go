package spread

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// Option configures a Client.
type Option func(*config) error

type config struct {
	name       string
	membership bool
	priority   int
	lim        Limits
	inbox      int
	dial       func(ctx context.Context, addr string) (net.Conn, error)
}

// WithName sets the private name of the connection (up to 10 characters;
// see ValidPrivateName). Without it the daemon makes one up.
func WithName(name string) Option {
	return func(c *config) error {
		if !ValidPrivateName(name) {
			return fmt.Errorf("%w: private name %q", ErrInvalidName, name)
		}
		c.name = name
		return nil
	}
}

// WithMembership says whether the client wants membership messages
// (true by default), as SP_connect's group_membership.
func WithMembership(on bool) Option {
	return func(c *config) error { c.membership = on; return nil }
}

// WithPriority sets SP_connect's priority: 0 (the default) or 1, the
// values Spread's library sends.
func WithPriority(p int) Option {
	return func(c *config) error {
		if p < 0 || p > 1 {
			return fmt.Errorf("spread: WithPriority(%d): must be 0 or 1", p)
		}
		c.priority = p
		return nil
	}
}

// WithLimits bounds the messages the client accepts from the daemon
// (DefaultMaxMessage data bytes, DefaultMaxGroups groups).
func WithLimits(l Limits) Option {
	return func(c *config) error { c.lim = l; return nil }
}

// WithInbox sets how many deliveries wait for Receive (1024). When it is
// full the client stops reading and the daemon's buffers fill (Spread
// then disconnects a client that falls too far behind).
func WithInbox(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("spread: WithInbox(%d): must be positive", n)
		}
		c.inbox = n
		return nil
	}
}

// WithDialer replaces how the client dials (TCP by default).
func WithDialer(dial func(ctx context.Context, addr string) (net.Conn, error)) Option {
	return func(c *config) error {
		if dial == nil {
			return errors.New("spread: WithDialer(nil)")
		}
		c.dial = dial
		return nil
	}
}

// Client is a session with a Spread daemon: the equivalent of a mailbox
// of Spread's C library. Its API has the shape of slc's group package:
// Join, Leave, Multicast, Receive and Poll. All methods are safe for
// concurrent use; sends are serialized and Receive calls share one queue.
type Client struct {
	nc      net.Conn
	cfg     config
	private string
	version [3]byte
	inbox   chan Delivery

	writeMu sync.Mutex
	serial  uint64 // under writeMu: the last multicast's serial

	viewsMu sync.Mutex
	views   map[string][]string // the last members of each group, for Joined and Left

	done      chan struct{}
	failOnce  sync.Once
	err       error
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Dial connects to the daemon at addr (DefaultAddr when empty) and runs
// the connect handshake: the connect message, the NULL authentication,
// the accept byte, the daemon's version and the private group name. A
// refusal is an *Error with the daemon's code.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	cfg := config{membership: true, inbox: 1024}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.dial == nil {
		var d net.Dialer
		cfg.dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	nc, err := cfg.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	c := &Client{nc: nc, cfg: cfg, inbox: make(chan Delivery, cfg.inbox), views: make(map[string][]string), done: make(chan struct{})}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		nc.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	r := bufio.NewReader(nc)
	err = c.handshake(r)
	if !stop() {
		<-fired
		if err == nil {
			err = ctx.Err()
		} else {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	c.wg.Add(1)
	go c.readLoop(r)
	return c, nil
}

func (c *Client) handshake(r *bufio.Reader) error {
	if _, err := c.nc.Write(AppendConnect(nil, c.cfg.name, c.cfg.membership, c.cfg.priority)); err != nil {
		return fmt.Errorf("spread: connect: %w", err)
	}
	// The daemon's authentication methods: a length byte, then names
	// separated by spaces. Or, if it refuses at once, an error code.
	n, err := r.ReadByte()
	if err != nil {
		return fmt.Errorf("spread: reading the authentication methods: %w", err)
	}
	if int8(n) < 0 {
		return &Error{Code: int(int8(n))}
	}
	if n > authChoiceSize {
		return fmt.Errorf("%w: authentication list of %d bytes (at most %d)", ErrProtocol, n, authChoiceSize)
	}
	list := make([]byte, n)
	if _, err := io.ReadFull(r, list); err != nil {
		return fmt.Errorf("spread: reading the authentication methods: %w", err)
	}
	methods := strings.FieldsFunc(string(list), func(r rune) bool { return r == ' ' || r == 0 })
	if !slices.Contains(methods, "NULL") {
		return fmt.Errorf("%w (it offers %q)", ErrNoNullAuth, methods)
	}
	if _, err := c.nc.Write(AppendAuthChoice(nil)); err != nil {
		return fmt.Errorf("spread: authentication: %w", err)
	}
	accept, err := r.ReadByte()
	if err != nil {
		return fmt.Errorf("spread: reading the accept byte: %w", err)
	}
	if accept != acceptSession {
		return &Error{Code: int(int8(accept))}
	}
	if _, err := io.ReadFull(r, c.version[:]); err != nil {
		return fmt.Errorf("spread: reading the version: %w", err)
	}
	if c.version[0] < 4 {
		return fmt.Errorf("%w: daemon version %d.%d.%d; this client speaks Spread 4", ErrProtocol, c.version[0], c.version[1], c.version[2])
	}
	n, err = r.ReadByte()
	if err != nil {
		return fmt.Errorf("spread: reading the private group: %w", err)
	}
	if n == 0 || n >= MaxGroupName {
		return fmt.Errorf("%w: private group name of %d bytes", ErrProtocol, n)
	}
	name := make([]byte, n)
	if _, err := io.ReadFull(r, name); err != nil {
		return fmt.Errorf("spread: reading the private group: %w", err)
	}
	c.private = string(name)
	return nil
}

// PrivateGroup returns the client's private group name ("#name#daemon"):
// messages sent to it reach this client alone.
func (c *Client) PrivateGroup() string { return c.private }

// Version returns the daemon's version.
func (c *Client) Version() (major, minor, patch int) {
	return int(c.version[0]), int(c.version[1]), int(c.version[2])
}

// Done is closed when the session is over.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the session ended, or nil while it is open.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

func (c *Client) fail(err error) {
	c.failOnce.Do(func() {
		c.err = err
		close(c.done)
		c.nc.Close()
	})
}

func (c *Client) readLoop(r *bufio.Reader) {
	defer c.wg.Done()
	for {
		m, err := ReadMessage(r, c.cfg.lim)
		if err != nil {
			if errors.Is(err, ErrProtocol) {
				c.fail(err)
			} else {
				c.fail(fmt.Errorf("%w: %w", ErrConnLost, err))
			}
			return
		}
		d, err := m.Decode(c.private)
		if err != nil {
			c.fail(err)
			return
		}
		if mb, ok := d.(*Membership); ok {
			c.track(mb)
		}
		select {
		case c.inbox <- d:
		case <-c.done:
			return
		}
	}
}

// track fills Joined and Left from the previous view when the message
// does not name them, and remembers the view.
func (c *Client) track(mb *Membership) {
	if mb.Transitional {
		return
	}
	c.viewsMu.Lock()
	defer c.viewsMu.Unlock()
	prev := c.views[mb.Group]
	if mb.Members == nil { // self-leave
		delete(c.views, mb.Group)
		if mb.Left == nil {
			mb.Left = []string{c.private}
		}
		return
	}
	if mb.Joined == nil && mb.Left == nil {
		for _, m := range mb.Members {
			if !slices.Contains(prev, m) {
				mb.Joined = append(mb.Joined, m)
			}
		}
		for _, m := range prev {
			if !slices.Contains(mb.Members, m) {
				mb.Left = append(mb.Left, m)
			}
		}
	}
	c.views[mb.Group] = slices.Clone(mb.Members)
}

// write sends b whole, or closes the session: a write cut by ctx would
// leave half a message on the stream.
func (c *Client) write(ctx context.Context, b []byte) error {
	return c.writeThen(ctx, b, nil)
}

// writeThen writes b and, if it was written, calls done under the write
// lock.
func (c *Client) writeThen(ctx context.Context, b []byte, done func()) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	select {
	case <-c.done:
		return c.err
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.nc.SetWriteDeadline(time.Unix(1, 0))
		close(fired)
	})
	_, err := c.nc.Write(b)
	if !stop() {
		<-fired
		if err != nil {
			c.fail(fmt.Errorf("%w: write cut by %w", ErrConnLost, ctx.Err()))
			return ctx.Err()
		}
		c.nc.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		c.fail(fmt.Errorf("%w: %w", ErrConnLost, err))
		return c.Err()
	}
	if done != nil {
		done()
	}
	return nil
}

func (c *Client) control(ctx context.Context, typ uint32, group string) error {
	if !ValidGroupName(group) {
		return fmt.Errorf("%w: group %q", ErrInvalidName, group)
	}
	return c.write(ctx, AppendMessage(nil, Header{Type: typ, Sender: c.private}, []string{group}, nil))
}

// Join joins group (SP_join). The membership message that follows shows
// the new view.
func (c *Client) Join(ctx context.Context, group string) error {
	return c.control(ctx, typeJoin, group)
}

// Leave leaves group (SP_leave). A membership message with no members
// confirms it.
func (c *Client) Leave(ctx context.Context, group string) error {
	return c.control(ctx, typeLeave, group)
}

// Multicast sends body ([]byte or string) to group with the service
// level svc and the application's message type (SP_multicast). It
// returns once the message is written to the daemon, with the message's
// serial: 1 for this client's first multicast, then 2, 3... (Spread has
// no message numbers on the wire; the serial mirrors group.Member's).
func (c *Client) Multicast(ctx context.Context, svc Service, group string, msgType int16, body any) (uint64, error) {
	return c.MulticastGroups(ctx, svc, []string{group}, msgType, body)
}

// MulticastGroups sends body to several groups at once
// (SP_multigroup_multicast): each member of any of them gets it once.
func (c *Client) MulticastGroups(ctx context.Context, svc Service, groups []string, msgType int16, body any) (uint64, error) {
	if !svc.Valid() {
		return 0, fmt.Errorf("%w: %v", ErrInvalidService, svc)
	}
	if len(groups) == 0 {
		return 0, fmt.Errorf("%w: no group", ErrInvalidName)
	}
	for _, g := range groups {
		if !validDestination(g) {
			return 0, fmt.Errorf("%w: group %q", ErrInvalidName, g)
		}
	}
	var data []byte
	switch b := body.(type) {
	case []byte:
		data = b
	case string:
		data = []byte(b)
	case nil:
	default:
		return 0, fmt.Errorf("spread: body of type %T: Spread carries bytes ([]byte or string)", body)
	}
	if len(data)+MaxGroupName*len(groups) > MaxMessageBody {
		return 0, fmt.Errorf("%w: %d bytes to %d groups (Spread takes %d bytes with 32 per group)",
			ErrTooLarge, len(data), len(groups), MaxMessageBody)
	}
	h := Header{Type: uint32(svc), Sender: c.private, Hint: uint32(uint16(msgType)) << 8}
	var serial uint64
	err := c.writeThen(ctx, AppendMessage(nil, h, groups, data), func() {
		c.serial++
		serial = c.serial
	})
	return serial, err
}

// Receive returns the next delivery: a *Message or a *Membership. Once
// the session is over and the deliveries read, it returns why it ended.
func (c *Client) Receive(ctx context.Context) (Delivery, error) {
	select {
	case d := <-c.inbox:
		return d, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		select {
		case d := <-c.inbox:
			return d, nil
		default:
			return nil, c.err
		}
	}
}

// TryReceive returns the next delivery if one waits.
func (c *Client) TryReceive() (Delivery, bool) {
	select {
	case d := <-c.inbox:
		return d, true
	default:
		return nil, false
	}
}

// Members returns the members of group in the last regular view this
// client received, or nil when it is not in the group.
func (c *Client) Members(group string) []string {
	c.viewsMu.Lock()
	defer c.viewsMu.Unlock()
	return slices.Clone(c.views[group])
}

// Poll returns how many deliveries wait for Receive. (Spread's SP_poll
// counts bytes; this counts messages, as group.Poll does.)
func (c *Client) Poll() int { return len(c.inbox) }

// Close disconnects from the daemon (a KILL_MESS to its own private
// group, as SP_disconnect), closes the connection and waits for the
// reader. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c.write(ctx, AppendMessage(nil, Header{Type: typeKill, Sender: c.private}, []string{c.private}, nil))
		cancel()
		c.fail(ErrClosed)
	})
	c.wg.Wait()
	return nil
}
