package secure

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeyLen is the size of a Curve25519 key, private or public, in bytes.
const KeyLen = 32

// publicPrefix starts the text form of a public key.
const publicPrefix = "x25519:"

// PublicKey is a node's static Curve25519 public key: what its peers
// authorize, pin and see as its identity. It is comparable with ==.
//
// Its text form, written by String and read by ParsePublicKey, is
// "x25519:" followed by the 32 bytes in standard, padded base64 (44
// characters):
//
//	x25519:HSMXcG8j5M1GVTtrwaUfpp4Tf3BfBH5JLe2RqDSpPks=
type PublicKey [KeyLen]byte

// ParsePublicKey reads a public key in the form String writes. The
// "x25519:" prefix may be left out (a bare base64 key, as WireGuard
// prints them).
func ParsePublicKey(s string) (PublicKey, error) {
	var pk PublicKey
	b64 := strings.TrimPrefix(strings.TrimSpace(s), publicPrefix)
	if b64 == "" {
		return pk, errors.New("secure: empty public key")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) != KeyLen {
		return pk, fmt.Errorf("secure: invalid public key %q: want %s followed by %d bytes in base64 (%d characters)",
			clip(s, 60), publicPrefix, KeyLen, base64.StdEncoding.EncodedLen(KeyLen))
	}
	copy(pk[:], raw)
	if pk.IsZero() {
		return pk, errors.New("secure: invalid public key: all zero")
	}
	return pk, nil
}

// String returns the key's text form, "x25519:" and base64.
func (pk PublicKey) String() string {
	return publicPrefix + base64.StdEncoding.EncodeToString(pk[:])
}

// Fingerprint returns a short, stable name for the key: "SHA256:" and the
// first 16 bytes of the SHA-256 of the 32 key bytes, in unpadded base64
// (22 characters), for example "SHA256:St5tK8n87gVXsTqFEu5ELw" for the key
// above. It is what
// error messages and events show. It implements peer.Identity.
func (pk PublicKey) Fingerprint() string {
	sum := sha256.Sum256(pk[:])
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:16])
}

// IsZero reports whether the key is all zero bytes (no key).
func (pk PublicKey) IsZero() bool { return pk == PublicKey{} }

// MarshalText implements encoding.TextMarshaler with the String form.
func (pk PublicKey) MarshalText() ([]byte, error) { return []byte(pk.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParsePublicKey.
func (pk *PublicKey) UnmarshalText(b []byte) error {
	k, err := ParsePublicKey(string(b))
	if err != nil {
		return err
	}
	*pk = k
	return nil
}

// Identity is a node's static Curve25519 key pair. The private half never
// leaves the process except through Save; String and the fmt verbs print
// only the public key.
type Identity struct {
	private [KeyLen]byte
	public  PublicKey
	key     *ecdh.PrivateKey
}

// GenerateIdentity creates a new random key pair.
func GenerateIdentity() (*Identity, error) {
	var priv [KeyLen]byte
	if _, err := rand.Read(priv[:]); err != nil {
		return nil, fmt.Errorf("secure: generate key: %w", err)
	}
	return identityFromPrivate(priv)
}

func identityFromPrivate(priv [KeyLen]byte) (*Identity, error) {
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		return nil, fmt.Errorf("secure: derive public key: %w", err)
	}
	id := &Identity{private: priv, key: k}
	copy(id.public[:], k.PublicKey().Bytes())
	return id, nil
}

// PublicKey returns the public half of the key pair.
func (id *Identity) PublicKey() PublicKey { return id.public }

// String returns "identity" and the public key; the private key is never
// printed.
func (id *Identity) String() string { return "identity " + id.public.String() }

// GoString is like String, so %#v does not print the private key either.
func (id *Identity) GoString() string { return "secure.Identity{" + id.public.String() + "}" }

// Private key files.
//
// A private key file is UTF-8 text, one item per line. The first line is
// the header, exactly "slc private key v1". Then, in any order: the line
// "private " followed by the 32-byte private key in standard, padded
// base64 (required), and optionally "public " followed by the public key
// in its text form, which must match the private key. Empty lines and
// lines starting with "#" are ignored. Save writes:
//
//	slc private key v1
//	# fingerprint SHA256:Z8ov/W/p76s9duN8NJkKWg
//	public x25519:eaYx7t4b+cmPEgMs3q3Q56B5OY/HhriMyEbsia+FpRo=
//	private QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=
const keyFileHeader = "slc private key v1"

// maxKeyFile bounds what LoadIdentity and the list loaders read.
const maxKeyFile = 1 << 20

// ParseIdentity reads the contents of a private key file (see Save for
// the format).
func ParseIdentity(data []byte) (*Identity, error) {
	if len(data) > maxKeyFile {
		return nil, errors.New("secure: private key file too large")
	}
	var (
		priv, pub       []byte
		havePub, header bool
		lineNo          int
	)
	for line := range bytes.Lines(data) {
		lineNo++
		s := strings.TrimSpace(string(line))
		if !header {
			if s != keyFileHeader {
				return nil, fmt.Errorf("secure: not an slc private key file: the first line must be %q", keyFileHeader)
			}
			header = true
			continue
		}
		if s == "" || s[0] == '#' {
			continue
		}
		field, value, _ := strings.Cut(s, " ")
		value = strings.TrimSpace(value)
		switch field {
		case "private":
			if priv != nil {
				return nil, fmt.Errorf("secure: private key file line %d: a second private key", lineNo)
			}
			b, err := base64.StdEncoding.Strict().DecodeString(value)
			if err != nil || len(b) != KeyLen {
				return nil, fmt.Errorf("secure: private key file line %d: the private key must be %d bytes in base64", lineNo, KeyLen)
			}
			priv = b
		case "public":
			if havePub {
				return nil, fmt.Errorf("secure: private key file line %d: a second public key", lineNo)
			}
			pk, err := ParsePublicKey(value)
			if err != nil {
				return nil, fmt.Errorf("secure: private key file line %d: %w", lineNo, err)
			}
			pub, havePub = pk[:], true
		default:
			return nil, fmt.Errorf("secure: private key file line %d: unknown item %q (want \"private\" or \"public\")", lineNo, clip(field, 40))
		}
	}
	if !header {
		return nil, fmt.Errorf("secure: not an slc private key file: the first line must be %q", keyFileHeader)
	}
	if priv == nil {
		return nil, errors.New("secure: private key file has no \"private\" line")
	}
	id, err := identityFromPrivate([KeyLen]byte(priv))
	if err != nil {
		return nil, err
	}
	if havePub && subtle.ConstantTimeCompare(pub, id.public[:]) != 1 {
		return nil, errors.New("secure: private key file: the public key does not belong to the private key (edited or corrupted file)")
	}
	return id, nil
}

// Marshal returns the private key file contents for id (see Save).
func (id *Identity) marshal() []byte {
	var b bytes.Buffer
	b.WriteString(keyFileHeader + "\n")
	b.WriteString("# fingerprint " + id.public.Fingerprint() + "\n")
	b.WriteString("public " + id.public.String() + "\n")
	b.WriteString("private " + base64.StdEncoding.EncodeToString(id.private[:]) + "\n")
	return b.Bytes()
}

// Save writes id to a new private key file at path, readable and writable
// by its owner only (mode 0600). It refuses to overwrite an existing file.
//
// The file is UTF-8 text: the header line "slc private key v1", a comment
// with the fingerprint, "public " and the public key, and "private " and
// the 32-byte private key in standard base64. ParseIdentity also accepts
// the file without the public key and comment lines.
func (id *Identity) Save(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("secure: %s already exists: not overwriting a key file", path)
		}
		return fmt.Errorf("secure: save key: %w", err)
	}
	_, err = f.Write(id.marshal())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("secure: save key: %w", err)
	}
	return nil
}

// LoadIdentity reads a private key file written by Save. Like ssh, it
// refuses a file that group or others can access in any way: the key
// would no longer be private.
func LoadIdentity(path string) (*Identity, error) {
	data, err := readPrivateFile(path, "private key file", 0o077)
	if err != nil {
		return nil, err
	}
	id, err := ParseIdentity(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return id, nil
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
