package main

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The baselines: raw TCP with a 4-byte length prefix and bufio (the
// ceiling), the same behind a channel and a writer goroutine (the shape
// of an actor that owns a connection), and raw TCP whose byte stream is
// sealed with AES-256-GCM in records of at most 64 KiB (the Noise
// transport's record size): the ceiling for secure modes.
func init() {
	register(&System{
		Name:  "tcp",
		About: "raw TCP, 4-byte length prefix, 64 KiB bufio on both sides (the ceiling)",
		OneWay: func(c Cell, rxs int, got Deliver) (Sender, error) {
			return newStreamSender(c, rxs, got, plainStream)
		},
		Echo: func(c Cell) (Requester, error) { return newStreamEcho(c, plainStream) },
		Idle: &Idle{Listen: tcpIdleListen, Peers: tcpIdlePeers},
	})
	register(&System{
		Name:  "tcp-chan",
		About: "raw TCP behind a channel and a writer goroutine per connection (the actor shape); Send copies the message",
		OneWay: func(c Cell, rxs int, got Deliver) (Sender, error) {
			return newChanSender(c, rxs, got)
		},
		Echo: newChanEcho,
	})
	register(&System{
		Name:  "tcp-aesgcm",
		About: "raw TCP, stream sealed with AES-256-GCM in records of up to 64 KiB (the ceiling for secure modes)",
		OneWay: func(c Cell, rxs int, got Deliver) (Sender, error) {
			return newStreamSender(c, rxs, got, sealedStream)
		},
		Echo: func(c Cell) (Requester, error) { return newStreamEcho(c, sealedStream) },
	})
}

const streamBuf = 64 << 10

// flushWriter is a buffered writer.
type flushWriter interface {
	io.Writer
	Flush() error
}

// streamWrap turns a connection into a buffered reader and writer. client
// tells the two ends apart.
type streamWrap func(c net.Conn, client bool) (io.Reader, flushWriter)

func plainStream(c net.Conn, _ bool) (io.Reader, flushWriter) {
	return bufio.NewReaderSize(c, streamBuf), bufio.NewWriterSize(c, streamBuf)
}

// loopbackPairs returns n connected pairs of TCP connections on loopback.
func loopbackPairs(n int, timeout time.Duration) (clients, servers []net.Conn, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	closeAll := func() {
		for _, c := range append(clients, servers...) {
			c.Close()
		}
	}
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), timeout)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		clients = append(clients, c)
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(timeout))
		s, err := ln.Accept()
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		servers = append(servers, s)
	}
	return clients, servers, nil
}

func appendFrameHeader(b []byte, n int) []byte {
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

// maxFrame bounds the frames the baselines accept.
const maxFrame = 64 << 20

// readFrames reads length-prefixed frames from r and passes each to fn. The
// slice is reused for the next frame.
func readFrames(r io.Reader, fn func([]byte) error) error {
	var hdr [4]byte
	buf := make([]byte, 0, 4<<10)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n > maxFrame {
			return fmt.Errorf("frame of %d bytes", n)
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		b := buf[:n]
		if _, err := io.ReadFull(r, b); err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
}

// receiveFrames runs a receiver: it checks every frame from r and reports
// it as receiver rx.
func receiveFrames(wg *sync.WaitGroup, r io.Reader, p *Payload, rx int, got Deliver) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		d := p.NewDecoder()
		err := readFrames(r, func(b []byte) error {
			seq, err := d.Check(b)
			got(rx, seq, err)
			return err
		})
		if err != nil && !isClosed(err) {
			got(rx, 0, err)
		}
	}()
}

// isClosed reports errors that mean the cell was torn down.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe)
}

// streamSender writes every message to each receiver's connection in turn.
type streamSender struct {
	enc     *Encoder
	clients []net.Conn
	servers []net.Conn
	ws      []flushWriter
	hdr     []byte
	wg      sync.WaitGroup
}

func newStreamSender(c Cell, rxs int, got Deliver, wrap streamWrap) (*streamSender, error) {
	clients, servers, err := loopbackPairs(rxs, c.Timeout)
	if err != nil {
		return nil, err
	}
	s := &streamSender{enc: c.P.NewEncoder(), clients: clients, servers: servers}
	for i := range clients {
		_, w := wrap(clients[i], true)
		s.ws = append(s.ws, w)
		r, _ := wrap(servers[i], false)
		receiveFrames(&s.wg, r, c.P, i, got)
	}
	return s, nil
}

func (s *streamSender) Send(seq uint64) error {
	b := s.enc.Encode(seq)
	s.hdr = appendFrameHeader(s.hdr[:0], len(b))
	for _, w := range s.ws {
		if _, err := w.Write(s.hdr); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func (s *streamSender) Finish(context.Context) error {
	for _, w := range s.ws {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func (s *streamSender) Close() error {
	for _, c := range append(s.clients, s.servers...) {
		c.Close()
	}
	s.wg.Wait()
	return nil
}

// streamEcho is a client and an echo server on one connection.
type streamEcho struct {
	client, server net.Conn
	r              io.Reader
	w              flushWriter
	enc            *Encoder
	dec            *Decoder
	hdr            [4]byte
	buf            []byte
	wg             sync.WaitGroup
}

func newStreamEcho(c Cell, wrap streamWrap) (*streamEcho, error) {
	clients, servers, err := loopbackPairs(1, c.Timeout)
	if err != nil {
		return nil, err
	}
	e := &streamEcho{client: clients[0], server: servers[0], enc: c.P.NewEncoder(), dec: c.P.NewDecoder()}
	e.r, e.w = wrap(e.client, true)
	sr, sw := wrap(e.server, false)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		var hdr []byte
		readFrames(sr, func(b []byte) error {
			hdr = appendFrameHeader(hdr[:0], len(b))
			sw.Write(hdr)
			sw.Write(b)
			return sw.Flush()
		})
	}()
	return e, nil
}

func (e *streamEcho) Request(seq uint64) error {
	b := e.enc.Encode(seq)
	if _, err := e.w.Write(appendFrameHeader(e.hdr[:0], len(b))); err != nil {
		return err
	}
	if _, err := e.w.Write(b); err != nil {
		return err
	}
	if err := e.w.Flush(); err != nil {
		return err
	}
	if _, err := io.ReadFull(e.r, e.hdr[:]); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint32(e.hdr[:]))
	if n > maxFrame {
		return fmt.Errorf("frame of %d bytes", n)
	}
	if cap(e.buf) < n {
		e.buf = make([]byte, n)
	}
	if _, err := io.ReadFull(e.r, e.buf[:n]); err != nil {
		return err
	}
	return checkEcho(e.dec, e.buf[:n], seq)
}

func (e *streamEcho) Close() error {
	e.client.Close()
	e.server.Close()
	e.wg.Wait()
	return nil
}

// checkEcho checks a reply to request seq.
func checkEcho(d *Decoder, b []byte, seq uint64) error {
	got, err := d.Check(b)
	if err != nil {
		return err
	}
	if got != seq {
		return fmt.Errorf("reply %d to request %d", got, seq)
	}
	return nil
}

// The actor shape: Send copies the message into a pooled frame and hands
// it to each connection's writer goroutine over a channel; the writer
// flushes when its channel is empty.

type chanFrame struct {
	b     []byte
	refs  atomic.Int32
	flush chan struct{} // a flush request instead of data
}

var chanFrames = sync.Pool{New: func() any { return new(chanFrame) }}

type chanWriter struct {
	ch   chan *chanFrame
	quit chan struct{}
	err  atomic.Pointer[error]
	done chan struct{}
}

func startChanWriter(w flushWriter, quit chan struct{}) *chanWriter {
	cw := &chanWriter{ch: make(chan *chanFrame, 256), quit: quit, done: make(chan struct{})}
	go func() {
		defer close(cw.done)
		var failed error
		for {
			var f *chanFrame
			select {
			case f = <-cw.ch:
			case <-quit:
				return
			}
			if f.flush != nil {
				if failed == nil {
					failed = w.Flush()
				}
				close(f.flush)
				continue
			}
			if failed == nil {
				_, failed = w.Write(f.b)
				if failed == nil && len(cw.ch) == 0 {
					failed = w.Flush()
				}
				if failed != nil {
					cw.err.Store(&failed)
				}
			}
			if f.refs.Add(-1) == 0 {
				chanFrames.Put(f)
			}
		}
	}()
	return cw
}

func (cw *chanWriter) put(f *chanFrame) error {
	if p := cw.err.Load(); p != nil {
		return *p
	}
	select {
	case cw.ch <- f:
		return nil
	case <-cw.quit:
		return net.ErrClosed
	}
}

func (cw *chanWriter) flush(ctx context.Context) error {
	f := &chanFrame{flush: make(chan struct{})}
	if err := cw.put(f); err != nil {
		return err
	}
	select {
	case <-f.flush:
	case <-cw.quit:
		return net.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	if p := cw.err.Load(); p != nil {
		return *p
	}
	return nil
}

// newChanFrame copies b, with its length prefix, into a pooled frame that
// refs writers will release.
func newChanFrame(b []byte, refs int) *chanFrame {
	f := chanFrames.Get().(*chanFrame)
	f.b = append(appendFrameHeader(f.b[:0], len(b)), b...)
	f.refs.Store(int32(refs))
	return f
}

type chanSender struct {
	enc     *Encoder
	clients []net.Conn
	servers []net.Conn
	outs    []*chanWriter
	quit    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func newChanSender(c Cell, rxs int, got Deliver) (*chanSender, error) {
	clients, servers, err := loopbackPairs(rxs, c.Timeout)
	if err != nil {
		return nil, err
	}
	s := &chanSender{enc: c.P.NewEncoder(), clients: clients, servers: servers, quit: make(chan struct{})}
	for i := range clients {
		_, w := plainStream(clients[i], true)
		s.outs = append(s.outs, startChanWriter(w, s.quit))
		r, _ := plainStream(servers[i], false)
		receiveFrames(&s.wg, r, c.P, i, got)
	}
	return s, nil
}

func (s *chanSender) Send(seq uint64) error {
	f := newChanFrame(s.enc.Encode(seq), len(s.outs))
	for _, o := range s.outs {
		if err := o.put(f); err != nil {
			return err
		}
	}
	return nil
}

func (s *chanSender) Finish(ctx context.Context) error {
	for _, o := range s.outs {
		if err := o.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (s *chanSender) Close() error {
	s.once.Do(func() { close(s.quit) })
	for _, c := range append(s.clients, s.servers...) {
		c.Close()
	}
	for _, o := range s.outs {
		<-o.done
	}
	s.wg.Wait()
	return nil
}

// chanEcho is the actor shape on both sides: each side reads on one
// goroutine and writes through a channel to a writer goroutine.
type chanEcho struct {
	client, server net.Conn
	out            *chanWriter
	replies        chan []byte
	free           chan []byte
	quit           chan struct{}
	enc            *Encoder
	dec            *Decoder
	wg             sync.WaitGroup
	once           sync.Once
}

func newChanEcho(c Cell) (Requester, error) {
	clients, servers, err := loopbackPairs(1, c.Timeout)
	if err != nil {
		return nil, err
	}
	e := &chanEcho{client: clients[0], server: servers[0], quit: make(chan struct{}),
		replies: make(chan []byte, 1), free: make(chan []byte, 1), enc: c.P.NewEncoder(), dec: c.P.NewDecoder()}
	cr, cw := plainStream(e.client, true)
	e.out = startChanWriter(cw, e.quit)
	sr, sw := plainStream(e.server, false)
	srvOut := startChanWriter(sw, e.quit)
	e.wg.Add(2)
	go func() { // server reader: hands each request to the server's writer
		defer e.wg.Done()
		readFrames(sr, func(b []byte) error { return srvOut.put(newChanFrame(b, 1)) })
	}()
	go func() { // client reader: hands each reply to Request
		defer e.wg.Done()
		defer close(e.replies)
		readFrames(cr, func(b []byte) error {
			var c []byte
			select {
			case c = <-e.free:
			default:
			}
			select {
			case e.replies <- append(c[:0], b...):
				return nil
			case <-e.quit:
				return net.ErrClosed
			}
		})
	}()
	return e, nil
}

func (e *chanEcho) Request(seq uint64) error {
	if err := e.out.put(newChanFrame(e.enc.Encode(seq), 1)); err != nil {
		return err
	}
	b, ok := <-e.replies
	if !ok {
		return net.ErrClosed
	}
	err := checkEcho(e.dec, b, seq)
	select {
	case e.free <- b:
	default:
	}
	return err
}

func (e *chanEcho) Close() error {
	e.once.Do(func() { close(e.quit) })
	e.client.Close()
	e.server.Close()
	e.wg.Wait()
	return nil
}

// The sealed stream: AES-256-GCM records of at most 64 KiB, each with a
// 2-byte length and a 16-byte tag, nonces counting up per direction.

const (
	recordMax   = 65535
	recordPlain = recordMax - 16
)

var streamKeys = func() (k [2][32]byte) {
	rand.Read(k[0][:])
	rand.Read(k[1][:])
	return k
}()

func newAEAD(dir int) cipher.AEAD {
	block, err := aes.NewCipher(streamKeys[dir][:])
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

func sealedStream(c net.Conn, client bool) (io.Reader, flushWriter) {
	out, in := 0, 1 // client to server uses key 0
	if !client {
		out, in = 1, 0
	}
	return &openReader{r: bufio.NewReaderSize(c, 2*recordMax), aead: newAEAD(in)},
		&sealWriter{w: c, aead: newAEAD(out), plain: make([]byte, 0, recordPlain)}
}

type sealWriter struct {
	w     io.Writer
	aead  cipher.AEAD
	nonce uint64
	plain []byte
	out   []byte
}

func (s *sealWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), recordPlain-len(s.plain))
		s.plain = append(s.plain, p[:k]...)
		p, n = p[k:], n+k
		if len(s.plain) == recordPlain {
			if err := s.Flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (s *sealWriter) Flush() error {
	if len(s.plain) == 0 {
		return nil
	}
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[4:], s.nonce)
	s.nonce++
	s.out = binary.BigEndian.AppendUint16(s.out[:0], uint16(len(s.plain)+s.aead.Overhead()))
	s.out = s.aead.Seal(s.out, nonce[:], s.plain, nil)
	s.plain = s.plain[:0]
	_, err := s.w.Write(s.out)
	return err
}

type openReader struct {
	r     *bufio.Reader
	aead  cipher.AEAD
	nonce uint64
	buf   []byte
	plain []byte
}

func (o *openReader) Read(p []byte) (int, error) {
	for len(o.plain) == 0 {
		var hdr [2]byte
		if _, err := io.ReadFull(o.r, hdr[:]); err != nil {
			return 0, err
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if cap(o.buf) < n {
			o.buf = make([]byte, recordMax)
		}
		if _, err := io.ReadFull(o.r, o.buf[:n]); err != nil {
			return 0, err
		}
		var nonce [12]byte
		binary.BigEndian.PutUint64(nonce[4:], o.nonce)
		o.nonce++
		plain, err := o.aead.Open(o.buf[:0], nonce[:], o.buf[:n], nil)
		if err != nil {
			return 0, err
		}
		o.plain = plain
	}
	n := copy(p, o.plain)
	o.plain = o.plain[n:]
	return n, nil
}

// Idle peers: a goroutine per accepted connection, blocked in Read with a
// 4 KiB bufio.Reader, as a typical Go server keeps its clients.

type tcpIdleServer struct {
	ln    net.Listener
	n     atomic.Int64
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func tcpIdleListen(int, time.Duration) (IdleServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &tcpIdleServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.n.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				br := bufio.NewReaderSize(c, 4<<10)
				io.Copy(io.Discard, br)
			}()
		}
	}()
	return s, nil
}

func (s *tcpIdleServer) Addr() string   { return s.ln.Addr().String() }
func (s *tcpIdleServer) Connected() int { return int(s.n.Load()) }
func (s *tcpIdleServer) Close() error {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func tcpIdlePeers(addr string, n, parallel int, timeout time.Duration) (func() error, func(), error) {
	conns := newConnSet(n)
	connect := func() error {
		return dialAll(n, parallel, func(i int) error {
			c, err := net.DialTimeout("tcp", addr, timeout)
			if err != nil {
				return err
			}
			conns.add(i, func() { c.Close() })
			return nil
		})
	}
	return connect, conns.closeAll, nil
}

// dialAll runs dial for 0..n-1, parallel at a time, and returns the
// first error.
func dialAll(n, parallel int, dial func(i int) error) error {
	sem := make(chan struct{}, max(1, parallel))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := dial(i); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("peer %d: %w", i, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// connSet holds what closes each idle peer.
type connSet struct {
	mu      sync.Mutex
	closers []func()
}

func newConnSet(n int) *connSet { return &connSet{closers: make([]func(), n)} }

func (s *connSet) add(i int, close func()) {
	s.mu.Lock()
	s.closers[i] = close
	s.mu.Unlock()
}

// closeAll closes every peer, in parallel.
func (s *connSet) closeAll() {
	s.mu.Lock()
	closers := s.closers
	s.closers = nil
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, cl := range closers {
		if cl != nil {
			wg.Add(1)
			go func() { defer wg.Done(); cl() }()
		}
	}
	wg.Wait()
}
