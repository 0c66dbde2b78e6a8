package serpy

import (
	"context"
	"net"
	"sync"
)

// Server accepts serpy or serpy2 connections, as serpy's Server does, and
// hands each to Accept as a Conn. All methods are safe for concurrent
// use.
type Server struct {
	cfg config
	ln  net.Listener

	accepted chan *Conn
	done     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup // the accept loop
	connWG   sync.WaitGroup // the goroutines of every connection, also of those that ended

	mu       sync.Mutex
	conns    map[*Conn]struct{}
	rejected int
}

// Listen listens on addr (host:port; port 0 picks one) and serves.
func Listen(addr string, opts ...Option) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s, err := NewServer(ln, opts...)
	if err != nil {
		ln.Close()
	}
	return s, err
}

// NewServer serves on ln, which the server closes when it closes.
func NewServer(ln net.Listener, opts ...Option) (*Server, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		ln:       ln,
		accepted: make(chan *Conn, 16),
		done:     make(chan struct{}),
		conns:    make(map[*Conn]struct{}),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return // the listener is gone
		}
		s.mu.Lock()
		full := s.cfg.maxConns > 0 && len(s.conns) >= s.cfg.maxConns
		if full {
			s.rejected++
			s.mu.Unlock()
			nc.Close()
			continue
		}
		conn := newConn(nc, &s.cfg, nil, s.forget)
		s.conns[conn] = struct{}{}
		s.mu.Unlock()
		s.connWG.Add(1)
		go func() {
			defer s.connWG.Done()
			<-conn.Done()
			conn.wg.Wait()
		}()
		select {
		case s.accepted <- conn:
		case <-s.done:
			conn.Close()
			return
		}
	}
}

func (s *Server) forget(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Accept returns the next accepted connection.
func (s *Server) Accept(ctx context.Context) (*Conn, error) {
	select {
	case c := <-s.accepted:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, ErrClosed
	}
}

// Conns returns the open connections.
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// Rejected returns how many connections were closed at once because the
// server had WithMaxConns connections already.
func (s *Server) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

// Close stops listening, closes every connection (writing what was
// queued, up to the linger time) and waits for every goroutine the server
// started. It is idempotent.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.ln.Close()
	})
	s.wg.Wait()
	for _, c := range s.Conns() {
		c.Close()
	}
	for {
		select {
		case c := <-s.accepted:
			c.Close()
			continue
		default:
		}
		break
	}
	s.connWG.Wait()
	return nil
}
