package rsb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Defaults of the socket transport, as RSB's (host localhost, port
// 55555).
const (
	DefaultPort = 55555
	DefaultAddr = "localhost:55555"
	// DefaultMaxFrame bounds a notification's size on receipt (the
	// protocol allows 4 GiB).
	DefaultMaxFrame = 64 << 20
)

// Errors of the socket transport.
var (
	// ErrHandshake reports a server whose first 4 bytes are not zero.
	ErrHandshake = errors.New("rsb: bad handshake: the server's first 4 bytes are not zero")
	// ErrFrameTooLarge reports a length prefix above the receiver's
	// limit; the connection is closed.
	ErrFrameTooLarge = errors.New("rsb: notification too large")
	// ErrClosed reports a server, client or connection closed by Close.
	ErrClosed = errors.New("rsb: closed")
	// ErrConnLost reports a connection that broke (reset, end of stream).
	ErrConnLost = errors.New("rsb: connection lost")
	// ErrSlowPeer reports a connection closed by the server because its
	// send queue was full: one slow client never stalls the bus.
	ErrSlowPeer = errors.New("rsb: peer too slow, send queue full")
)

// handshake is what the server sends after accepting a connection.
var handshake = [4]byte{0, 0, 0, 0}

// AppendFrame appends the frame of n to b: a uint32 little-endian length
// and the notification's protobuf encoding.
func AppendFrame(b []byte, n *Notification) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = n.AppendMarshal(b)
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// ReadFrame reads one frame and returns its payload (the encoded
// notification). A length above max (DefaultMaxFrame when max <= 0) is
// ErrFrameTooLarge, checked before allocating. A stream that ends between
// frames gives io.EOF; one that ends inside a frame io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// ReadNotification reads and decodes one frame.
func ReadNotification(r io.Reader, max int) (*Notification, error) {
	b, err := ReadFrame(r, max)
	if err != nil {
		return nil, err
	}
	n := new(Notification)
	if err := n.Unmarshal(b); err != nil {
		return nil, err
	}
	return n, nil
}

// readHandshake reads the server's 4 bytes on a client connection.
func readHandshake(r io.Reader) error {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Errorf("rsb: reading the handshake: %w", err)
	}
	if b != handshake {
		return fmt.Errorf("%w (got % x)", ErrHandshake, b[:])
	}
	return nil
}
