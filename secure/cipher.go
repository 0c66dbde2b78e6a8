package secure

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"strings"

	"github.com/flynn/noise"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"

	"github.com/slc-go/slc/internal/wire"
)

// Cipher names the AEAD of a connection's Noise channel: as a node's
// preference (Config.SetCipher), or as the cipher a connection uses
// (Conn.Cipher).
//
// Both ciphers are 256-bit-key AEADs with 16-byte tags, and records have
// the same format with either. A connection uses AES-256-GCM when both
// sides prefer it (each says so in its preamble), ChaCha20-Poly1305
// otherwise; the preambles are bound into the handshake, so an attacker
// cannot change the outcome without making the handshake fail
// (docs/security.md, section 3.1).
type Cipher uint8

const (
	// CipherAuto, the default, prefers AES-256-GCM when this machine's
	// CPU has instructions for AES and for GCM's carry-less
	// multiplication (AES-NI and PCLMULQDQ on amd64, the AES and PMULL
	// extensions on arm64, CPACF on s390x): they make AES-256-GCM 2 to 3
	// times faster than ChaCha20-Poly1305, and constant-time. Without
	// them it prefers ChaCha20-Poly1305.
	CipherAuto Cipher = iota
	// CipherChaCha20Poly1305 never prefers AES-256-GCM: every connection
	// of the node uses ChaCha20-Poly1305.
	CipherChaCha20Poly1305
	// CipherAESGCM always prefers AES-256-GCM: connections use it when
	// the remote prefers it too. On a CPU without AES instructions, Go's
	// AES is slower than ChaCha20-Poly1305 and not constant-time.
	CipherAESGCM
)

// String returns the name ParseCipher accepts: "auto",
// "chacha20poly1305" or "aesgcm".
func (c Cipher) String() string {
	switch c {
	case CipherAuto:
		return "auto"
	case CipherChaCha20Poly1305:
		return "chacha20poly1305"
	case CipherAESGCM:
		return "aesgcm"
	}
	return fmt.Sprintf("cipher(%d)", uint8(c))
}

// ParseCipher parses a cipher preference, as String writes it: "auto",
// "chacha20poly1305" or "aesgcm", in any case.
func ParseCipher(s string) (Cipher, error) {
	for _, c := range []Cipher{CipherAuto, CipherChaCha20Poly1305, CipherAESGCM} {
		if strings.EqualFold(s, c.String()) {
			return c, nil
		}
	}
	return 0, fmt.Errorf("slc: secure: unknown cipher %q: want auto, chacha20poly1305 or aesgcm", s)
}

// hasAESGCM reports whether this CPU has the instructions that make Go's
// AES-GCM fast and constant-time.
var hasAESGCM = cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ ||
	cpu.ARM64.HasAES && cpu.ARM64.HasPMULL ||
	cpu.S390X.HasAES && cpu.S390X.HasAESGCM

// HardwareAESGCM reports whether this machine's CPU has AES and
// carry-less multiplication instructions, that is whether CipherAuto
// prefers AES-256-GCM.
func HardwareAESGCM() bool { return hasAESGCM }

// prefersAES reports whether the preference p, on this machine, asks for
// AES-256-GCM.
func (c Cipher) prefersAES() bool {
	return c == CipherAESGCM || c == CipherAuto && hasAESGCM
}

// negotiateCipher is the rule both sides apply to the two preambles:
// AES-256-GCM when both set wire.PreambleAESGCM, ChaCha20-Poly1305
// otherwise (and when either preamble is malformed). Its arguments may
// come in either order.
func negotiateCipher(a, b []byte) Cipher {
	pa, err1 := wire.ParsePreamble(a)
	pb, err2 := wire.ParsePreamble(b)
	if err1 == nil && err2 == nil && pa.Flags&pb.Flags&wire.PreambleAESGCM != 0 {
		return CipherAESGCM
	}
	return CipherChaCha20Poly1305
}

// noiseCipher returns flynn/noise's cipher function for a negotiated
// cipher.
func (c Cipher) noiseCipher() noise.CipherFunc {
	if c == CipherAESGCM {
		return noise.CipherAESGCM
	}
	return noise.CipherChaChaPoly
}

// newAEAD returns the AEAD of a negotiated cipher with key.
func (c Cipher) newAEAD(key [32]byte) (cipher.AEAD, error) {
	if c != CipherAESGCM {
		return chacha20poly1305.New(key[:])
	}
	b, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
