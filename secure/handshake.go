package secure

import (
	"context"
	"crypto/ecdh"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/flynn/noise"

	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
)

// newCipherSuite is Noise_*_25519_ChaChaPoly_SHA256, or
// Noise_*_25519_AESGCM_SHA256, for one handshake by id.
func newCipherSuite(id *Identity, c Cipher) noise.CipherSuite {
	return noise.NewCipherSuite(&dh25519{static: id}, c.noiseCipher(), noise.HashSHA256)
}

// dh25519 is Noise's 25519 function on crypto/ecdh for one handshake. It
// keeps the *ecdh.PrivateKey of the static and ephemeral keys, so that each
// DH is one scalar multiplication: the X25519 function flynn/noise calls
// derives the private key's public key again every time, doubling the cost
// of a handshake.
type dh25519 struct {
	static *Identity
	eph    *ecdh.PrivateKey
	ephRaw []byte
}

func (d *dh25519) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	k, err := ecdh.X25519().GenerateKey(rng)
	if err != nil {
		return noise.DHKey{}, err
	}
	d.eph, d.ephRaw = k, k.Bytes()
	return noise.DHKey{Private: d.ephRaw, Public: k.PublicKey().Bytes()}, nil
}

func (d *dh25519) DH(priv, pub []byte) ([]byte, error) {
	var k *ecdh.PrivateKey
	switch {
	case d.eph != nil && subtle.ConstantTimeCompare(priv, d.ephRaw) == 1:
		k = d.eph
	case d.static != nil && subtle.ConstantTimeCompare(priv, d.static.private[:]) == 1:
		k = d.static.key
	default:
		var err error
		if k, err = ecdh.X25519().NewPrivateKey(priv); err != nil {
			return nil, err
		}
	}
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return k.ECDH(p)
}

func (d *dh25519) DHLen() int     { return 32 }
func (d *dh25519) DHName() string { return "25519" }

// Protocol names, as Noise defines them for the two modes and the two
// ciphers.
const (
	ProtocolXX          = "Noise_XX_25519_ChaChaPoly_SHA256"
	ProtocolXXPSK       = "Noise_XXpsk3_25519_ChaChaPoly_SHA256"
	ProtocolXXAESGCM    = "Noise_XX_25519_AESGCM_SHA256"
	ProtocolXXPSKAESGCM = "Noise_XXpsk3_25519_AESGCM_SHA256"
)

// ProtocolName returns the Noise protocol name of a handshake: with a
// network secret (psk) or not, with the negotiated cipher c.
func ProtocolName(psk bool, c Cipher) string {
	switch {
	case psk && c == CipherAESGCM:
		return ProtocolXXPSKAESGCM
	case psk:
		return ProtocolXXPSK
	case c == CipherAESGCM:
		return ProtocolXXAESGCM
	}
	return ProtocolXX
}

// preambleConn is what peer.RunHandshake hands to Handshake: the transport
// connection, with the preamble this side sent and the one it received.
type preambleConn interface {
	net.Conn
	NetConn() net.Conn
	Preambles() (local, remote [wire.PreambleLen]byte)
}

// Prologue returns the Noise prologue of a connection: the preamble the
// initiator sent followed by the one the responder sent, each as the side
// running the handshake saw it. A preamble altered in transit makes the two
// sides' prologues differ, and the handshake fails.
func Prologue(initiator, responder []byte) []byte {
	p := make([]byte, 0, len(initiator)+len(responder))
	return append(append(p, initiator...), responder...)
}

// Handshake runs the Noise handshake on conn, this side as the initiator
// when initiator is true (the side that dialed), and returns the encrypted
// connection (a *Conn) and the remote's static public key (a PublicKey).
// It implements peer.Security.
//
// conn is normally what peer.RunHandshake passes: the transport connection
// carrying the preambles both sides exchanged, which the handshake binds
// through its prologue. The cipher is AES-256-GCM when both preambles set
// wire.PreambleAESGCM, ChaCha20-Poly1305 otherwise. On any other net.Conn
// the preambles are taken to be the ones this implementation sends in
// this mode with no flags, so the cipher is ChaCha20-Poly1305.
//
// Failures are *wire.ProtocolError values: CodeAuthFailed (retryable) when
// a handshake message fails authentication, CodeUnauthorized (permanent)
// when the remote's key is not among the authorized keys; in that case the
// remote is told so in an encrypted REJECT frame before the connection is
// closed, and it never sees this node's hello.
func (c *Config) Handshake(ctx context.Context, conn net.Conn, initiator bool) (net.Conn, peer.Identity, error) {
	local, err := c.localIdentity()
	if err != nil {
		return nil, nil, err
	}
	raw := conn
	mine := wire.AppendPreamble(nil, wire.Preamble{Min: wire.MinVersion, Max: wire.MaxVersion, Mode: c.Mode()})
	theirs := mine
	if pc, ok := conn.(preambleConn); ok {
		raw = pc.NetConn()
		l, r := pc.Preambles()
		mine, theirs = l[:], r[:]
	}
	suite := negotiateCipher(mine, theirs)
	prologue := Prologue(theirs, mine)
	if initiator {
		prologue = Prologue(mine, theirs)
	}
	version := wire.MaxVersion
	lp, err1 := wire.ParsePreamble(mine)
	rp, err2 := wire.ParsePreamble(theirs)
	if err1 == nil && err2 == nil {
		if v, err := wire.Negotiate(lp, rp); err == nil {
			version = v
		}
	}

	ncfg := noise.Config{
		CipherSuite:   newCipherSuite(local, suite),
		Pattern:       noise.HandshakeXX,
		Initiator:     initiator,
		Prologue:      prologue,
		StaticKeypair: noise.DHKey{Private: local.private[:], Public: local.public[:]},
	}
	if c.psk != nil {
		ncfg.PresharedKey = c.psk[:]
		ncfg.PresharedKeyPlacement = 3
	}
	hs, err := noise.NewHandshakeState(ncfg)
	if err != nil {
		return nil, nil, fmt.Errorf("secure: %w", err)
	}
	h := &handshaker{nc: raw, hs: hs, psk: c.psk != nil}
	var send, recv *noise.CipherState
	if initiator {
		if err = h.write(); err == nil {
			if err = h.read(2); err == nil {
				send, recv, err = h.writeLast()
			}
		}
	} else {
		if err = h.read(1); err == nil {
			if err = h.write(); err == nil {
				recv, send, err = h.readLast()
			}
		}
	}
	if err != nil {
		return nil, nil, err
	}
	var remote PublicKey
	copy(remote[:], hs.PeerStatic())
	sc, err := newConn(raw, suite, send.UnsafeKey(), recv.UnsafeKey(), remote)
	if err != nil {
		return nil, nil, fmt.Errorf("secure: %w", err)
	}
	if err := c.admit(remote); err != nil {
		if pe, ok := wire.AsProtocolError(err); ok {
			sc.SetWriteDeadline(time.Now().Add(time.Second))
			sc.Write(wire.AppendClose(nil, version, wire.TypeReject, wire.Close{Code: pe.Code, Reason: pe.Reason}))
		}
		sc.Close()
		return nil, nil, err
	}
	return sc, remote, nil
}

// handshaker exchanges the handshake messages, each framed by its 2-byte
// length like transport messages.
type handshaker struct {
	nc  net.Conn
	hs  *noise.HandshakeState
	psk bool
	buf []byte
}

func (h *handshaker) write() error {
	msg, _, _, err := h.hs.WriteMessage(h.buf[:0], nil)
	if err != nil {
		return fmt.Errorf("secure: handshake: %w", err)
	}
	return h.send(msg)
}

func (h *handshaker) send(msg []byte) error {
	out := make([]byte, lenPrefix, lenPrefix+len(msg))
	binary.BigEndian.PutUint16(out, uint16(len(msg)))
	_, err := h.nc.Write(append(out, msg...))
	return err
}

func (h *handshaker) writeLast() (cs1, cs2 *noise.CipherState, err error) {
	msg, cs1, cs2, err := h.hs.WriteMessage(h.buf[:0], nil)
	if err != nil {
		return nil, nil, fmt.Errorf("secure: handshake: %w", err)
	}
	if cs1 == nil {
		return nil, nil, errors.New("secure: handshake did not complete")
	}
	return cs1, cs2, h.send(msg)
}

// maxHandshakeMessage bounds a Noise handshake message.
const maxHandshakeMessage = 256

// receive reads one framed handshake message. Length 0 is the remote's
// notice that it rejected this side's handshake.
func (h *handshaker) receive() ([]byte, error) {
	var hdr [lenPrefix]byte
	if _, err := io.ReadFull(h.nc, hdr[:]); err != nil {
		return nil, err
	}
	l := int(binary.BigEndian.Uint16(hdr[:]))
	if l == 0 {
		return nil, abortedByRemote()
	}
	// The handshake messages carry no payload: the longest, the
	// responder's, is 96 bytes (112 with a network secret). A larger
	// announced length is not a handshake; refuse it at once rather than
	// wait for bytes that will never make sense.
	if l > maxHandshakeMessage {
		return nil, &wire.ProtocolError{Code: wire.CodeAuthFailed, Reason: fmt.Sprintf("handshake message of %d bytes announced (at most %d): not an slc secure peer", l, maxHandshakeMessage)}
	}
	msg := make([]byte, l)
	if _, err := io.ReadFull(h.nc, msg); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return msg, nil
}

func (h *handshaker) read(n int) error {
	msg, err := h.receive()
	if err != nil {
		return err
	}
	if _, _, _, err := h.hs.ReadMessage(nil, msg); err != nil {
		return h.fail(n)
	}
	return nil
}

func (h *handshaker) readLast() (cs1, cs2 *noise.CipherState, err error) {
	msg, err := h.receive()
	if err != nil {
		return nil, nil, err
	}
	_, cs1, cs2, err = h.hs.ReadMessage(nil, msg)
	if err != nil || cs1 == nil {
		return nil, nil, h.fail(3)
	}
	return cs1, cs2, nil
}

// fail tells the remote, with a length-0 message, that its handshake
// message n did not authenticate, and returns the error for this side.
func (h *handshaker) fail(n int) error {
	h.nc.SetWriteDeadline(time.Now().Add(time.Second))
	h.nc.Write([]byte{0, 0})
	reason := fmt.Sprintf("handshake message %d from the remote failed authentication: it was altered in transit, or the preambles were", n)
	if n == 3 && h.psk {
		reason = "handshake message 3 from the remote failed authentication: the remote does not have this network's secret, or the handshake was altered in transit"
	}
	return &wire.ProtocolError{Code: wire.CodeAuthFailed, Reason: reason}
}

func abortedByRemote() error {
	return &wire.ProtocolError{Code: wire.CodeAuthFailed, Remote: true,
		Reason: "the remote could not authenticate this node's handshake: a different network secret, or the handshake or preambles were altered in transit"}
}
