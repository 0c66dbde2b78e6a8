package secure

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/slc-go/slc/internal/wire"
)

// Record framing on the stream, after the handshake. Every Noise message
// is sent as a 2-byte big-endian length and that many bytes; a transport
// message is the ChaCha20-Poly1305 or AES-256-GCM ciphertext of up to
// MaxRecordPlaintext bytes followed by its 16-byte tag.
const (
	// MaxNoiseMessage is the largest Noise message, handshake or transport.
	MaxNoiseMessage = 65535
	// tagLen is the tag size of both ciphers (newCipherState checks it).
	tagLen = 16
	// MaxRecordPlaintext is the most plaintext one transport message
	// carries.
	MaxRecordPlaintext = MaxNoiseMessage - tagLen
	lenPrefix          = 2
	maxWire            = lenPrefix + MaxNoiseMessage

	// readBufSize is the largest ciphertext buffer of a connection's
	// reader: it holds several records, so one read from the socket
	// serves many. The buffer starts at minReadBuf, grows fourfold when a
	// read fills it, and shrinks after reads that use little of it, so an
	// idle connection keeps little memory.
	readBufSize = 128 << 10
	minReadBuf  = 4 << 10
	// idleWriteBuf is the most buffer a writer keeps between writes that
	// use little of it.
	idleWriteBuf = 16 << 10
	// writeChunk is how much ciphertext the writer seals before handing it
	// to the socket in one write.
	writeChunk = 256 << 10
)

// ErrAuthFailed matches (with errors.Is) every authentication failure:
// handshake failures (a *wire.ProtocolError with CodeAuthFailed, also
// exported as slc.ProtocolError) and records that fail to decrypt on an
// established connection (*AuthError).
var ErrAuthFailed error = &wire.ProtocolError{Code: wire.CodeAuthFailed}

// ErrUnauthorized matches a peer refused for its key or for the name it
// used with that key (a *wire.ProtocolError with CodeUnauthorized), on the
// side that refused and, with Remote set, on the refused side.
var ErrUnauthorized error = &wire.ProtocolError{Code: wire.CodeUnauthorized}

// AuthError reports a record that failed authentication on an established
// connection: it was corrupted or forged in transit, replayed, reordered or
// cut. The connection is closed; the error is not permanent, so the session
// reconnects and resumes where it stopped. It is deliberately not a
// *wire.ProtocolError: the connection ends without a GOODBYE, which would
// end the session.
type AuthError struct {
	Record uint64 // the number of the record, counted from 0 per direction
	Reason string
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("slc: secure: authentication failed: record %d from the remote %s", e.Record, e.Reason)
}

// Is makes errors.Is(err, ErrAuthFailed) true.
func (e *AuthError) Is(target error) bool { return target == ErrAuthFailed }

// Permanent reports false: a new connection may well succeed.
func (e *AuthError) Permanent() bool { return false }

// cipherState encrypts or decrypts one direction: Noise's CipherState
// (a 64-bit counter nonce after 4 zero bytes, incremented per message, no
// associated data), without its per-message allocation. The counter is
// little-endian for ChaChaPoly, big-endian for AESGCM, as Noise specifies.
type cipherState struct {
	aead  cipher.AEAD
	be    bool // AESGCM: big-endian counter
	n     uint64
	nonce [nonceLen]byte
}

// nonceLen is the nonce size of both ciphers.
const nonceLen = 12

func newCipherState(c Cipher, key [32]byte) (cipherState, error) {
	a, err := c.newAEAD(key)
	if err != nil {
		return cipherState{}, err
	}
	if a.Overhead() != tagLen || a.NonceSize() != nonceLen {
		return cipherState{}, fmt.Errorf("cipher %v: %d-byte tag and %d-byte nonce", c, a.Overhead(), a.NonceSize())
	}
	return cipherState{aead: a, be: c == CipherAESGCM}, nil
}

// maxNonce is Noise's limit: 2^64-1 is reserved.
const maxNonce = ^uint64(0) - 1

func (c *cipherState) setNonce() {
	if c.be {
		binary.BigEndian.PutUint64(c.nonce[4:], c.n)
	} else {
		binary.LittleEndian.PutUint64(c.nonce[4:], c.n)
	}
}

func (c *cipherState) seal(dst, plain []byte) []byte {
	c.setNonce()
	c.n++
	return c.aead.Seal(dst, c.nonce[:], plain, nil)
}

func (c *cipherState) open(dst, ct []byte) ([]byte, error) {
	c.setNonce()
	out, err := c.aead.Open(dst, c.nonce[:], ct, nil)
	if err == nil {
		c.n++
	}
	return out, err
}

// Conn is an encrypted connection: it seals what is written into Noise
// transport messages and opens what is read, over the underlying
// connection. Reads and writes may run concurrently with each other and
// with Close; a Conn is safe for use by one reader and any number of
// writers (writes are serialized).
type Conn struct {
	nc     net.Conn
	remote PublicKey
	cipher Cipher

	rmu  sync.Mutex
	rx   cipherState
	rbuf []byte // ciphertext read from nc: rbuf[rpos:rend] not yet used
	rpos int
	rend int
	rcur int    // the buffer size wanted now, between minReadBuf and readBufSize
	pbuf []byte // plaintext of a record larger than the caller's buffer
	pend []byte // what is left of it
	rerr error  // sticky: a record failed authentication

	dl     sync.Mutex
	window time.Duration // how long one read from nc may wait, 0 = no limit
	fresh  bool          // a read deadline was set since the last Read

	wmu  sync.Mutex
	tx   cipherState
	wbuf []byte
	gbuf []byte    // gathers a record's plaintext that spans buffers
	one  [1][]byte // Write's single buffer
	werr error     // sticky: a failed write leaves the stream unusable
}

func newConn(nc net.Conn, ciph Cipher, send, recv [32]byte, remote PublicKey) (*Conn, error) {
	tx, err := newCipherState(ciph, send)
	if err != nil {
		return nil, err
	}
	rx, err := newCipherState(ciph, recv)
	if err != nil {
		return nil, err
	}
	return &Conn{nc: nc, remote: remote, cipher: ciph, tx: tx, rx: rx}, nil
}

// RemoteKey returns the static public key the remote proved in the
// handshake.
func (c *Conn) RemoteKey() PublicKey { return c.remote }

// Cipher returns the cipher the handshake negotiated and the records use:
// CipherAESGCM or CipherChaCha20Poly1305.
func (c *Conn) Cipher() Cipher { return c.cipher }

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Read reads plaintext. It decrypts, straight into p, as many complete
// records as are buffered and fit, reading from the underlying connection
// only when none is. A record that fails authentication makes this and
// every later Read fail with an *AuthError.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	// Each read from nc may get the caller's whole read window (see
	// rearm) when the caller arms a deadline before every Read, as a
	// connection's reader does once the handshake is over. During the
	// handshake (the remote's first two records, hello and resume, or a
	// deadline set once for several reads) the deadline stays absolute, so
	// that a remote cannot hold a handshake open by trickling bytes.
	c.dl.Lock()
	canRearm := c.fresh && c.rx.n >= 2
	c.fresh = false
	c.dl.Unlock()
	n, filled := 0, false
	for {
		if len(c.pend) > 0 {
			k := copy(p[n:], c.pend)
			c.pend = c.pend[k:]
			n += k
		}
		for n < len(p) && len(c.pend) == 0 && c.rerr == nil {
			avail := c.rend - c.rpos
			if avail < lenPrefix {
				break
			}
			l := int(binary.BigEndian.Uint16(c.rbuf[c.rpos:]))
			if l < tagLen {
				c.rerr = c.badLength(l)
				break
			}
			if avail < lenPrefix+l {
				break
			}
			ct := c.rbuf[c.rpos+lenPrefix : c.rpos+lenPrefix+l]
			var dst []byte
			direct := l-tagLen <= len(p)-n
			if direct {
				dst = p[n:n]
			} else {
				if c.pbuf == nil {
					c.pbuf = make([]byte, MaxRecordPlaintext)
				}
				dst = c.pbuf[:0]
			}
			seq := c.rx.n
			out, err := c.rx.open(dst, ct)
			if err != nil || seq >= maxNonce {
				c.rerr = &AuthError{Record: seq, Reason: "did not decrypt: corrupted, forged, replayed or reordered in transit"}
				break
			}
			c.rpos += lenPrefix + l
			if direct {
				n += len(out)
			} else {
				k := copy(p[n:], out)
				n += k
				c.pend = out[k:]
			}
		}
		if n > 0 {
			return n, nil
		}
		if c.rerr != nil {
			return 0, c.rerr
		}
		if filled && canRearm {
			c.rearm()
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
		filled = true
	}
}

// rearm gives the next read from nc as much time as the caller's read
// deadline gave the first one: a record that arrives in pieces over a slow
// link is not a silent connection. A deadline in the past (an interrupt)
// is left alone.
func (c *Conn) rearm() {
	c.dl.Lock()
	defer c.dl.Unlock()
	if c.window > 0 {
		c.nc.SetReadDeadline(time.Now().Add(c.window))
	}
}

func (c *Conn) setWindow(t time.Time) {
	c.fresh = true
	switch {
	case t.IsZero():
		c.window = 0
	default:
		c.window = max(time.Until(t), -1)
	}
}

// badLength is the error for a record shorter than its tag. Length 0 is
// the abort notice a side sends when it rejects the handshake: it can only
// come first.
func (c *Conn) badLength(l int) error {
	if l == 0 && c.rx.n == 0 {
		return abortedByRemote()
	}
	return &AuthError{Record: c.rx.n, Reason: fmt.Sprintf("has an impossible length %d", l)}
}

// fill reads from the underlying connection into the free end of rbuf,
// first moving the incomplete record at the head to the front when it
// would not fit.
func (c *Conn) fill() error {
	avail := c.rend - c.rpos
	need := lenPrefix // the bytes the next record takes, as far as known
	if avail >= lenPrefix {
		need += int(binary.BigEndian.Uint16(c.rbuf[c.rpos:]))
	}
	if c.rcur == 0 {
		c.rcur = minReadBuf
	}
	want := max(c.rcur, need)
	switch {
	case c.rbuf == nil || (avail == 0 && (len(c.rbuf) > 2*want || len(c.rbuf) < want)):
		// First use, the size wanted changed, or idle after a burst
		// (the large buffer goes).
		c.rbuf, c.rpos, c.rend = make([]byte, want), 0, 0
	case avail == 0:
		c.rpos, c.rend = 0, 0
	case c.rpos+need <= len(c.rbuf) && len(c.rbuf)-c.rend >= min(2<<10, len(c.rbuf)/4):
		// The record fits after what is buffered.
	case len(c.rbuf) >= want:
		c.rend = copy(c.rbuf, c.rbuf[c.rpos:c.rend])
		c.rpos = 0
	default:
		nb := make([]byte, want)
		c.rend = copy(nb, c.rbuf[c.rpos:c.rend])
		c.rbuf, c.rpos = nb, 0
	}
	space := len(c.rbuf) - c.rend
	m, err := c.nc.Read(c.rbuf[c.rend:])
	c.rend += m
	switch {
	case m == space && c.rcur < readBufSize:
		c.rcur = min(c.rcur*4, readBufSize)
	case m < c.rcur/16 && c.rcur > minReadBuf:
		c.rcur = max(c.rcur/2, minReadBuf)
	}
	if m > 0 {
		return nil
	}
	if err == io.EOF && c.rend > c.rpos {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// Write seals p into transport messages and writes them.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.one[0] = p
	n, err := c.writeBuffers(c.one[:])
	c.one[0] = nil
	return int(n), err
}

// WriteBuffers writes the concatenation of bufs, as net.Buffers.WriteTo
// would, but seals it into as few transport messages as possible: each
// message carries up to MaxRecordPlaintext bytes gathered across buffers,
// and the ciphertext goes to the socket in writes of about 256 KiB. It
// does not keep bufs.
func (c *Conn) WriteBuffers(bufs [][]byte) (int64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeBuffers(bufs)
}

func (c *Conn) writeBuffers(bufs [][]byte) (int64, error) {
	if c.werr != nil {
		return 0, c.werr
	}
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	if total == 0 {
		return 0, nil
	}
	records := (total + MaxRecordPlaintext - 1) / MaxRecordPlaintext
	need := min(total+records*(lenPrefix+tagLen), writeChunk+maxWire)
	if cap(c.wbuf) < need {
		c.wbuf = make([]byte, 0, need)
	}
	out := c.wbuf[:0]
	var written, sealed int64 // plaintext bytes written to the socket, sealed into out
	i, off := 0, 0            // the next plaintext byte: bufs[i][off]
	for left := total; left > 0; {
		n := min(left, MaxRecordPlaintext)
		for len(bufs[i]) == off {
			i, off = i+1, 0
		}
		var plain []byte
		if len(bufs[i])-off >= n {
			plain = bufs[i][off : off+n]
			off += n
		} else {
			if cap(c.gbuf) < n {
				c.gbuf = make([]byte, 0, n)
			}
			plain = c.gbuf[:0]
			for len(plain) < n {
				if len(bufs[i]) == off {
					i, off = i+1, 0
					continue
				}
				k := min(n-len(plain), len(bufs[i])-off)
				plain = append(plain, bufs[i][off:off+k]...)
				off += k
			}
		}
		if c.tx.n >= maxNonce {
			c.werr = errors.New("slc: secure: too many messages on one connection")
			return written, c.werr
		}
		out = binary.BigEndian.AppendUint16(out, uint16(n+tagLen))
		out = c.tx.seal(out, plain)
		left -= n
		sealed += int64(n)
		if len(out) >= writeChunk || left == 0 {
			if _, err := c.nc.Write(out); err != nil {
				c.werr = err
				return written, err
			}
			written = sealed
			out = out[:0]
		}
	}
	if cap(out) > idleWriteBuf && total < cap(out)/16 {
		// A small write after large ones: give the memory back.
		c.wbuf, c.gbuf = nil, nil
	} else {
		c.wbuf = out[:0]
	}
	return written, nil
}

// Close closes the underlying connection, which also ends a Read or Write
// in progress.
func (c *Conn) Close() error { return c.nc.Close() }

// LocalAddr returns the underlying connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the underlying connection's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetDeadline sets the underlying connection's deadlines (see
// SetReadDeadline).
func (c *Conn) SetDeadline(t time.Time) error {
	c.dl.Lock()
	defer c.dl.Unlock()
	c.setWindow(t)
	return c.nc.SetDeadline(t)
}

// SetReadDeadline sets the underlying connection's read deadline. Once
// the remote's first two records have arrived, a Read that follows a
// SetReadDeadline and needs several reads from the underlying connection
// to complete a record gives each of them, after the first, as long as
// the deadline gave the first: the deadline then bounds a silence, not the
// arrival of a whole record over a slow link.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dl.Lock()
	defer c.dl.Unlock()
	c.setWindow(t)
	return c.nc.SetReadDeadline(t)
}

// SetWriteDeadline sets the underlying connection's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }
