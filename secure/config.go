package secure

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
)

// MinSecretLen is the shortest network secret accepted, in bytes.
const MinSecretLen = 16

// pskLabel is the HKDF info string that turns a network secret into the
// Noise pre-shared key.
const pskLabel = "slc network secret v1"

// Config is a secure-mode configuration: this node's identity and how it
// decides which peers to trust. It implements peer.Security, and the slc
// options (slc.WithIdentity, slc.WithAuthorizedKeys, ...) build one.
//
// Build it with NewConfig and the Set, Add and Use methods, check it with
// Validate, then use it without further changes; it is then safe for
// concurrent use by any number of handshakes.
//
// The valid combinations:
//
//   - an identity and authorized keys (a list, a file, or both): a peer
//     must present a listed key, and use a name that key may use;
//   - an identity and trust on first use: the first key seen for a peer
//     name is pinned in the known-peers file, a different key for that
//     name is rejected;
//   - a network secret alone: every node that knows the secret is trusted
//     and may use any name; each process makes a new identity (key pair)
//     when it starts. (The slc facade still keeps a live session bound to
//     the key its peer first proved: another key claiming that name is
//     refused until the session ends. See docs/security.md, section 5.)
//   - a network secret with an identity, and optionally authorized keys or
//     trust on first use: both the secret and the key check must pass.
//
// Authorized keys and trust on first use exclude each other, and both need
// an identity.
type Config struct {
	identity  *Identity
	keys      []AuthorizedKey
	keysFile  *authFile
	known     *knownPeers
	psk       *[32]byte
	cipher    Cipher
	cipherSet bool

	once     sync.Once
	local    *Identity // identity, or one made for this process
	localErr error

	mu       sync.Mutex
	set      *authSet
	setGen   uint64
	setReady bool
	bound    map[string]PublicKey // names taken by keys listed without a name
}

// NewConfig returns an empty configuration.
func NewConfig() *Config { return &Config{} }

var (
	_ peer.Security        = (*Config)(nil)
	_ peer.PreambleFlagger = (*Config)(nil)
)

// SetIdentity sets this node's key pair.
func (c *Config) SetIdentity(id *Identity) error {
	switch {
	case id == nil:
		return errors.New("slc: secure: nil identity")
	case c.identity != nil:
		return errors.New("slc: secure: the identity is given twice")
	}
	c.identity = id
	return nil
}

// AddAuthorizedKeys adds entries to the authorized keys (see
// ParseAuthorizedKeys for what a name means).
func (c *Config) AddAuthorizedKeys(entries ...AuthorizedKey) error {
	if c.known != nil {
		return errTrustConflict
	}
	for _, e := range entries {
		if e.Key.IsZero() {
			return errors.New("slc: secure: an authorized key is zero")
		}
		if e.Name != "" && !wire.ValidName(e.Name) {
			return fmt.Errorf("slc: secure: invalid node name %q for an authorized key", e.Name)
		}
	}
	if c.keys == nil {
		c.keys = []AuthorizedKey{}
	}
	c.keys = append(c.keys, entries...)
	return nil
}

// UseAuthorizedKeysFile reads the authorized keys from a file now, and
// again whenever the file changes (checked at each handshake), so keys can
// be added or revoked without a restart. While the file is missing or
// invalid every peer is rejected.
func (c *Config) UseAuthorizedKeysFile(path string) error {
	switch {
	case c.known != nil:
		return errTrustConflict
	case c.keysFile != nil:
		return errors.New("slc: secure: only one authorized keys file can be given")
	}
	f, err := openAuthFile(path)
	if err != nil {
		return err
	}
	c.keysFile = f
	return nil
}

// UseKnownPeers turns on trust on first use, with the known-peers file at
// path. A missing file is created (mode 0600) when the first peer is
// pinned; its directory must exist.
func (c *Config) UseKnownPeers(path string) error {
	switch {
	case c.keys != nil || c.keysFile != nil:
		return errTrustConflict
	case c.known != nil:
		return errors.New("slc: secure: trust on first use is given twice")
	case path == "":
		return errors.New("slc: secure: empty known-peers file name")
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return fmt.Errorf("slc: secure: known-peers file %s: its directory does not exist", path)
	}
	k, err := openKnownPeers(path)
	if err != nil {
		return err
	}
	c.known = k
	return nil
}

// SetNetworkSecret mixes a secret shared by all nodes of a network into
// every handshake (Noise XXpsk3). Nodes without the same secret cannot
// connect. The 32-byte pre-shared key is HKDF-SHA256 of the secret with
// no salt and the info "slc network secret v1". The secret must be at
// least MinSecretLen bytes; a long random one is best (see
// docs/security.md: an active attacker can test guesses offline).
func (c *Config) SetNetworkSecret(secret []byte) error {
	switch {
	case c.psk != nil:
		return errors.New("slc: secure: the network secret is given twice")
	case len(secret) < MinSecretLen:
		return fmt.Errorf("slc: secure: the network secret must be at least %d bytes, got %d", MinSecretLen, len(secret))
	}
	key, err := hkdf.Key(sha256.New, secret, nil, pskLabel, 32)
	if err != nil {
		return fmt.Errorf("slc: secure: derive network key: %w", err)
	}
	c.psk = (*[32]byte)(key)
	return nil
}

// SetCipher sets which cipher this node prefers for its connections
// (CipherAuto when not set). A connection uses AES-256-GCM when both
// sides prefer it, ChaCha20-Poly1305 otherwise; see Cipher.
func (c *Config) SetCipher(p Cipher) error {
	switch {
	case c.cipherSet:
		return errors.New("slc: secure: the cipher is given twice")
	case p > CipherAESGCM:
		return fmt.Errorf("slc: secure: unknown cipher %d", uint8(p))
	}
	c.cipher, c.cipherSet = p, true
	return nil
}

var errTrustConflict = errors.New("slc: secure: authorized keys and trust on first use cannot be combined: choose one")

// Validate reports an incomplete or contradictory configuration.
func (c *Config) Validate() error {
	hasKeys := c.keys != nil || c.keysFile != nil
	switch {
	case hasKeys && c.known != nil:
		return errTrustConflict
	case c.identity == nil && c.psk == nil:
		return errors.New("slc: secure mode needs this node's identity (WithIdentity) or a network secret (WithNetworkSecret)")
	case c.identity == nil && hasKeys:
		return errors.New("slc: authorized keys need this node's identity too (WithIdentity), so that its peers can authorize it")
	case c.identity == nil && c.known != nil:
		return errors.New("slc: trust on first use needs this node's identity too (WithIdentity), so that its peers can pin it")
	case c.identity != nil && !hasKeys && c.known == nil && c.psk == nil:
		return errors.New("slc: secure mode needs a way to trust peers: WithAuthorizedKeys, WithAuthorizedKeysFile, WithTrustOnFirstUse or WithNetworkSecret")
	}
	return nil
}

// Mode is the preamble's security mode: Noise XX, or Noise XXpsk3 when a
// network secret is set.
func (c *Config) Mode() uint8 {
	if c.psk != nil {
		return wire.ModeNoisePSK
	}
	return wire.ModeNoiseXX
}

// PreambleFlags is the preamble's flags byte: wire.PreambleAESGCM when
// this node prefers AES-256-GCM (see SetCipher), else 0. It implements
// peer.PreambleFlagger.
func (c *Config) PreambleFlags() uint8 {
	if c.cipher.prefersAES() {
		return wire.PreambleAESGCM
	}
	return 0
}

// LocalKey returns this node's public key: the identity's, or the one made
// for this process when only a network secret is set.
func (c *Config) LocalKey() (PublicKey, error) {
	id, err := c.localIdentity()
	if err != nil {
		return PublicKey{}, err
	}
	return id.PublicKey(), nil
}

// LocalFingerprint returns the fingerprint of this node's public key, ""
// when the configuration is invalid. Discovery advertises it, so that a
// node found on the network can be checked to hold the key it announced.
func (c *Config) LocalFingerprint() string {
	k, err := c.LocalKey()
	if err != nil {
		return ""
	}
	return k.Fingerprint()
}

func (c *Config) localIdentity() (*Identity, error) {
	c.once.Do(func() {
		if err := c.Validate(); err != nil {
			c.localErr = &configError{err}
			return
		}
		c.local = c.identity
		if c.local == nil {
			c.local, c.localErr = GenerateIdentity()
		}
	})
	return c.local, c.localErr
}

// configError is an invalid configuration found at a handshake: permanent.
type configError struct{ error }

func (e *configError) Unwrap() error   { return e.error }
func (e *configError) Permanent() bool { return true }

// trusted returns the authorized keys in force, or nil when none are
// configured.
func (c *Config) trusted() (*authSet, error) {
	if c.keys == nil && c.keysFile == nil {
		return nil, nil
	}
	var fileKeys []AuthorizedKey
	var gen uint64
	if c.keysFile != nil {
		var err error
		fileKeys, gen, err = c.keysFile.current()
		if err != nil {
			return nil, &wire.ProtocolError{Code: wire.CodeInternal, Reason: "this node's authorized keys file is unusable: " + err.Error()}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.setReady || c.setGen != gen {
		c.set, c.setGen, c.setReady = newAuthSet(c.keys, fileKeys), gen, true
	}
	return c.set, nil
}

// admit is the check made right after the Noise handshake, before either
// side sends its hello: with authorized keys, a key that is not listed at
// all is refused before it learns anything about this node.
func (c *Config) admit(key PublicKey) error {
	set, err := c.trusted()
	if err != nil || set == nil {
		return err
	}
	if !set.listed(key) {
		return unauthorized("key %s is not in this node's authorized keys", key.Fingerprint())
	}
	return nil
}

// Authorize decides whether the peer that proved id may use the node name
// its hello claims. It implements peer.Security: a rejection is a
// *wire.ProtocolError with CodeUnauthorized (permanent), which the
// handshake sends to the peer in a REJECT frame.
func (c *Config) Authorize(name string, id peer.Identity) error {
	key, ok := id.(PublicKey)
	if !ok {
		return &wire.ProtocolError{Code: wire.CodeInternal, Reason: fmt.Sprintf("secure: unexpected identity %T", id)}
	}
	set, err := c.trusted()
	if err != nil {
		return err
	}
	if set != nil {
		wildcard, err := set.check(name, key)
		if err != nil {
			return err
		}
		if wildcard {
			c.mu.Lock()
			defer c.mu.Unlock()
			if prev, ok := c.bound[name]; ok && prev != key {
				return unauthorized("the name %q is already used by key %s; key %s may not take it over", name, prev.Fingerprint(), key.Fingerprint())
			}
			if c.bound == nil {
				c.bound = map[string]PublicKey{}
			}
			c.bound[name] = key
		}
	}
	if c.known != nil {
		return c.known.check(name, key)
	}
	return nil
}

// PinnedKey returns the key pinned for a peer name in the known-peers
// file, with trust on first use.
func (c *Config) PinnedKey(name string) (PublicKey, bool) {
	if c.known == nil {
		return PublicKey{}, false
	}
	return c.known.lookup(name)
}
