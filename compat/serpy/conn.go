package serpy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of connections.
var (
	// ErrClosed reports a connection, client or server closed by Close.
	ErrClosed = errors.New("serpy: closed")
	// ErrConnLost reports a connection that broke (reset, end of stream,
	// write failure). A Client reconnects after it; other errors that end
	// a connection are protocol errors, after which it does not.
	ErrConnLost = errors.New("serpy: connection lost")
	// ErrWrongProtocol reports SendMode on a serpy2 connection, which has
	// no modes.
	ErrWrongProtocol = errors.New("serpy: serpy2 has no modes; use Send")
)

// Conn is one serpy or serpy2 connection: a server's connection to one
// client, or the current connection of a Client. It runs one reader and
// one writer goroutine. All methods are safe for concurrent use.
type Conn struct {
	nc    net.Conn
	cfg   *config
	inbox chan any

	out     chan []byte // frames and blocks from senders, in order
	ctrlMu  sync.Mutex
	ctrl    [][]byte      // control replies from the reader; sent first
	ctrlSig chan struct{} // capacity 1: ctrl is not empty

	gate   sync.RWMutex // senders hold it shared; Close exclusively
	closed bool         // under gate: Close started

	sendMu  sync.Mutex    // serializes serpy v1 sends
	outMode Mode          // under sendMu; -1 when unknown
	modeAck chan struct{} // capacity 1: ACKMODCG arrived

	ackMu sync.Mutex
	acks  []chan struct{} // acknowledged-mode messages waiting for ACKEOT, in order

	closing    chan struct{} // Close started: the writer drains and stops
	writerDone chan struct{}
	done       chan struct{} // the connection is over
	failOnce   sync.Once
	closeOnce  sync.Once
	err        error // why it is over; set before done is closed
	wg         sync.WaitGroup
	onDone     func(*Conn)

	received, sent atomic.Uint64
	unsolicited    atomic.Uint64
}

func newConn(nc net.Conn, cfg *config, inbox chan any, onDone func(*Conn)) *Conn {
	if inbox == nil {
		inbox = make(chan any, cfg.inbox)
	}
	c := &Conn{
		nc:         nc,
		cfg:        cfg,
		inbox:      inbox,
		out:        make(chan []byte, 64),
		ctrlSig:    make(chan struct{}, 1),
		modeAck:    make(chan struct{}, 1),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		done:       make(chan struct{}),
		onDone:     onDone,
	}
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	return c
}

// Protocol returns the connection's protocol.
func (c *Conn) Protocol() Protocol { return c.cfg.protocol }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Done is closed when the connection is over.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection is over, or nil while it is open.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Stats are a connection's counters.
type Stats struct {
	Received    uint64 // messages delivered to the inbox
	Sent        uint64 // messages queued for the peer
	Unsolicited uint64 // acknowledgements nobody waited for (ignored)
}

// Stats returns the connection's counters.
func (c *Conn) Stats() Stats {
	return Stats{Received: c.received.Load(), Sent: c.sent.Load(), Unsolicited: c.unsolicited.Load()}
}

// fail ends the connection with err (the first error wins).
func (c *Conn) fail(err error) {
	c.failOnce.Do(func() {
		c.err = err
		close(c.done)
		c.nc.Close()
		if c.onDone != nil {
			c.onDone(c)
		}
	})
}

// lost wraps an I/O error as ErrConnLost.
func lost(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrConnLost, op, err)
}

// Close writes what Send queued (for up to the linger time), closes the
// connection and waits for its goroutines. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.nc.SetWriteDeadline(time.Now().Add(c.cfg.linger))
		c.gate.Lock()
		c.closed = true
		c.gate.Unlock()
		close(c.closing)
	})
	<-c.writerDone
	c.fail(ErrClosed)
	c.wg.Wait()
	return nil
}

// Receive returns the next message: a []byte for serpy, and an int64,
// float64, string or []byte for serpy2. Once the connection is over and
// its messages are read, it returns the error that ended it.
func (c *Conn) Receive(ctx context.Context) (any, error) {
	select {
	case v := <-c.inbox:
		return v, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		select {
		case v := <-c.inbox:
			return v, nil
		default:
			return nil, c.err
		}
	}
}

// TryReceive returns the next message if one is waiting.
func (c *Conn) TryReceive() (any, bool) {
	select {
	case v := <-c.inbox:
		return v, true
	default:
		return nil, false
	}
}

// Send sends v. On serpy2 it is one frame (see Encode). On serpy it is
// sent in mode 0, or mode 2 for a []byte, after Python's conversions (see
// ToBytesV1). Send returns once the data is queued for the socket.
func (c *Conn) Send(ctx context.Context, v any) error {
	if c.cfg.protocol == V2 {
		frame, err := MarshalFrame(v)
		if err != nil {
			return err
		}
		if err := c.enqueue(ctx, frame); err != nil {
			return err
		}
		c.sent.Add(1)
		return nil
	}
	return c.SendMode(ctx, v, ModePlain)
}

// SendMode sends v on a serpy (v1) connection in mode m, after Python's
// conversions (see ToBytesV1: a []byte goes in base85). If the peer's
// current mode differs, it first sends SETMODE and waits for ACKMODCG. In
// modes 1 and 3 it returns once the peer acknowledges the message (ACKEOT),
// that is once the message is in the peer's queue; in modes 0 and 2 once
// it is queued for the socket. Modes 4 and 5 fail with ErrPickleRefused.
func (c *Conn) SendMode(ctx context.Context, v any, m Mode) error {
	if c.cfg.protocol != V1 {
		return ErrWrongProtocol
	}
	data, m, err := ToBytesV1(v, m)
	if err != nil {
		return err
	}
	block, err := EncodeBlock(data, m)
	if err != nil {
		return err
	}
	c.sendMu.Lock()
	if c.outMode != m {
		select { // a stale acknowledgement must not stand for this one
		case <-c.modeAck:
		default:
		}
		if err := c.enqueue(ctx, SetModeBlock(m)); err != nil {
			c.outMode = -1
			c.sendMu.Unlock()
			return err
		}
		select {
		case <-c.modeAck:
		case <-ctx.Done():
			c.outMode = -1 // the peer may switch later: announce again next time
			c.sendMu.Unlock()
			return ctx.Err()
		case <-c.done:
			c.sendMu.Unlock()
			return c.err
		}
		c.outMode = m
	}
	var ack chan struct{}
	if m.acknowledged() {
		ack = make(chan struct{})
		c.ackMu.Lock()
		c.acks = append(c.acks, ack)
		c.ackMu.Unlock()
	}
	if err := c.enqueue(ctx, block); err != nil {
		if ack != nil { // never sent: it must not take another message's ACKEOT
			c.ackMu.Lock()
			c.acks = c.acks[:len(c.acks)-1]
			c.ackMu.Unlock()
		}
		c.sendMu.Unlock()
		return err
	}
	c.sendMu.Unlock()
	c.sent.Add(1)
	if ack == nil {
		return nil
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return c.err
	}
}

// enqueue hands b to the writer.
func (c *Conn) enqueue(ctx context.Context, b []byte) error {
	c.gate.RLock()
	defer c.gate.RUnlock()
	if c.closed {
		return ErrClosed
	}
	select {
	case <-c.done:
		return c.err
	default:
	}
	select {
	case c.out <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return c.err
	}
}

// queueCtrl queues a control reply; the reader never blocks on the writer.
func (c *Conn) queueCtrl(b []byte) {
	c.ctrlMu.Lock()
	c.ctrl = append(c.ctrl, b)
	c.ctrlMu.Unlock()
	select {
	case c.ctrlSig <- struct{}{}:
	default:
	}
}

func (c *Conn) popCtrl() []byte {
	c.ctrlMu.Lock()
	defer c.ctrlMu.Unlock()
	if len(c.ctrl) == 0 {
		return nil
	}
	b := c.ctrl[0]
	c.ctrl[0] = nil
	c.ctrl = c.ctrl[1:]
	return b
}

func (c *Conn) writeLoop() {
	defer c.wg.Done()
	defer close(c.writerDone)
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	write := func(b []byte) bool {
		if _, err := bw.Write(b); err != nil {
			c.fail(lost("write", err))
			return false
		}
		return true
	}
	for {
		if b := c.popCtrl(); b != nil {
			if !write(b) {
				return
			}
			continue
		}
		select {
		case b := <-c.out:
			if !write(b) {
				return
			}
			continue
		default:
		}
		if bw.Buffered() > 0 {
			if err := bw.Flush(); err != nil {
				c.fail(lost("write", err))
				return
			}
		}
		select {
		case b := <-c.out:
			if !write(b) {
				return
			}
		case <-c.ctrlSig:
		case <-c.done:
			return
		case <-c.closing:
			for { // senders are shut out: write what they queued
				b := c.popCtrl()
				if b == nil {
					select {
					case b = <-c.out:
					default:
					}
				}
				if b == nil {
					if err := bw.Flush(); err != nil {
						c.fail(lost("write", err))
					}
					return
				}
				if !write(b) {
					return
				}
			}
		}
	}
}

func (c *Conn) deliver(v any) bool {
	select {
	case c.inbox <- v:
		c.received.Add(1)
		return true
	case <-c.done:
		return false
	}
}

func (c *Conn) readErr(err error) error {
	switch {
	case errors.Is(err, ErrFrameTooLarge):
		return err
	case err == io.EOF:
		return lost("read", errors.New("peer closed the connection"))
	}
	return lost("read", err)
}

func (c *Conn) readLoop() {
	defer c.wg.Done()
	if c.cfg.protocol == V2 {
		fr := NewFrameReader(c.nc, c.cfg.maxFrame)
		for {
			t, data, err := fr.ReadFrame()
			if err != nil {
				if errors.Is(err, ErrBadMagic) || errors.Is(err, ErrChecksum) {
					c.fail(err)
				} else {
					c.fail(c.readErr(err))
				}
				return
			}
			v, err := Decode(t, data)
			if err != nil {
				c.fail(err)
				return
			}
			if !c.deliver(v) {
				return
			}
		}
	}
	br := NewBlockReader(c.nc, c.cfg.maxFrame)
	rcv := v1Receiver{max: c.cfg.maxFrame}
	for {
		b, err := br.ReadBlock()
		if err != nil {
			c.fail(c.readErr(err))
			return
		}
		ev, msg, err := rcv.block(b)
		if err != nil {
			c.fail(err)
			return
		}
		switch ev {
		case v1Data:
			if !c.deliver(msg) {
				return
			}
		case v1DataAck:
			// Acknowledged once it is in the inbox, where Receive finds it.
			if !c.deliver(msg) {
				return
			}
			c.queueCtrl(append(append([]byte{}, ctlAckEOT...), UnitSeparator))
		case v1SetMode:
			c.queueCtrl(append(append([]byte{}, ctlAckMode...), UnitSeparator))
		case v1AckMode:
			select {
			case c.modeAck <- struct{}{}:
			default:
				c.unsolicited.Add(1)
			}
		case v1AckEOT:
			c.ackMu.Lock()
			if len(c.acks) > 0 {
				close(c.acks[0])
				c.acks = c.acks[1:]
			} else {
				c.unsolicited.Add(1)
			}
			c.ackMu.Unlock()
		}
	}
}
