package rsb

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// Server is the server side of an RSB socket bus: it accepts clients,
// sends each the 4-byte handshake, and re-broadcasts every notification a
// client sends to the other clients. The process that runs the server is
// a participant too: Publish sends to every client, and Receive returns
// what the clients send. All methods are safe for concurrent use.
type Server struct {
	ln    net.Listener
	cfg   *config
	inbox chan *Notification

	mu     sync.Mutex
	conns  map[*Conn]struct{}
	closed bool

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Listen listens on addr (DefaultAddr when empty) and serves.
func Listen(ctx context.Context, addr string, opts ...Option) (*Server, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return serve(ln, cfg), nil
}

// Serve serves on ln, which the Server closes when it is closed.
func Serve(ln net.Listener, opts ...Option) (*Server, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return serve(ln, cfg), nil
}

func serve(ln net.Listener, cfg *config) *Server {
	s := &Server{
		ln:    ln,
		cfg:   cfg,
		inbox: make(chan *Notification, cfg.inbox),
		conns: make(map[*Conn]struct{}),
		done:  make(chan struct{}),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

// Addr returns the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// NumClients returns how many clients are connected.
func (s *Server) NumClients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-s.done:
				return
			default:
			}
			// A temporary failure (out of descriptors): go on after a
			// pause, as net/http does, unless the server closes.
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return
			}
			continue
		}
		nc.SetWriteDeadline(time.Now().Add(s.cfg.linger))
		_, err = nc.Write(handshake[:])
		nc.SetWriteDeadline(time.Time{})
		if err != nil {
			nc.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		c := newConn(nc, s.cfg.conn(), s.deliver, s.remove)
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		// Close waits for the goroutines of every connection, also of
		// those that ended before it.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			<-c.done
			c.wg.Wait()
		}()
	}
}

func (s *Server) remove(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// deliver runs on the reader of from: it re-broadcasts the frame as it
// came to the other clients, then queues the notification for Receive.
func (s *Server) deliver(from *Conn, raw []byte, n *Notification) {
	frame := make([]byte, 4+len(raw))
	frame[0], frame[1], frame[2], frame[3] = byte(len(raw)), byte(len(raw)>>8), byte(len(raw)>>16), byte(len(raw)>>24)
	copy(frame[4:], raw)
	s.broadcast(frame, from)
	select {
	case s.inbox <- n:
	case <-from.done:
	case <-s.done:
	}
}

// broadcast queues frame on every connection but except; connections
// whose queue is full are closed with ErrSlowPeer.
func (s *Server) broadcast(frame []byte, except *Conn) {
	var slow []*Conn
	s.mu.Lock()
	for c := range s.conns {
		if c != except && !c.trySend(frame) {
			select {
			case <-c.closing: // closing anyway
			default:
				slow = append(slow, c)
			}
		}
	}
	s.mu.Unlock()
	for _, c := range slow {
		c.fail(ErrSlowPeer)
	}
}

// Publish sends n to every connected client. It never waits for a slow
// client: one whose queue is full is disconnected (ErrSlowPeer).
func (s *Server) Publish(ctx context.Context, n *Notification) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	s.broadcast(AppendFrame(nil, n), nil)
	return nil
}

// Receive returns the next notification sent by a client.
func (s *Server) Receive(ctx context.Context) (*Notification, error) {
	select {
	case n := <-s.inbox:
		return n, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, ErrClosed
	}
}

// Close stops accepting, closes every client connection in order (see
// Conn.Close) and waits for the server's goroutines. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]*Conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		close(s.done)
		s.ln.Close()
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Close()
			}()
		}
		wg.Wait()
	})
	s.wg.Wait()
	return nil
}
