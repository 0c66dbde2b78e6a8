package slc

import (
	"errors"

	"github.com/slc-go/slc/secure"
)

// Secure mode. These options build one *secure.Config, installed as the
// Config's Security: every connection then runs a Noise handshake after
// the preamble, and everything after it (hello included) is encrypted and
// authenticated. See docs/security.md.
//
// WithIdentity turns secure mode on; it must be combined with one way to
// trust peers:
//
//	WithIdentity(id), WithAuthorizedKeys(keys...) / WithAuthorizedKeysFile(path)
//	WithIdentity(id), WithTrustOnFirstUse(knownPeersPath)
//	WithNetworkSecret(secret)                  // a key pair is made per process
//	WithNetworkSecret(secret), WithIdentity(id) // optionally with keys or TOFU too
//
// WithCipher chooses the cipher preference (by default AES-256-GCM on CPUs
// with AES instructions, ChaCha20-Poly1305 otherwise).
//
// Authorized keys and trust on first use exclude each other. Combining
// them, giving one option twice, an incomplete combination (an identity
// without a way to trust peers, authorized keys or trust on first use
// without an identity), or mixing these options with WithSecurity of
// another peer.Security makes New fail. Secure and plain nodes never
// connect to each other: both sides fail at once with "security mode
// mismatch".

// secureConfig returns the *secure.Config being built in c.
func secureConfig(c *Config) (*secure.Config, error) {
	switch s := c.Security.(type) {
	case nil:
		sc := secure.NewConfig()
		c.Security = sc
		return sc, nil
	case *secure.Config:
		return s, nil
	default:
		return nil, errors.New("slc: the secure options cannot be combined with WithSecurity")
	}
}

func withSecure(f func(*secure.Config) error) Option {
	return func(c *Config) error {
		sc, err := secureConfig(c)
		if err != nil {
			return err
		}
		return f(sc)
	}
}

// WithIdentity turns secure mode on with this node's key pair (see
// secure.GenerateIdentity and secure.LoadIdentity). Peers authorize or pin
// its public key.
func WithIdentity(id *secure.Identity) Option {
	return withSecure(func(sc *secure.Config) error { return sc.SetIdentity(id) })
}

// WithIdentityFile is WithIdentity with the key read from a private key
// file (see secure.LoadIdentity; written by "slc keygen"). A file others
// can read is refused.
func WithIdentityFile(path string) Option {
	return withSecure(func(sc *secure.Config) error {
		id, err := secure.LoadIdentity(path)
		if err != nil {
			return err
		}
		return sc.SetIdentity(id)
	})
}

// WithAuthorizedKeys accepts peers that present one of these public keys,
// under any node name not reserved for another key (see
// WithAuthorizedPeer). Within a process, the first key seen with a name
// keeps it. It may be given several times, and combined with
// WithAuthorizedPeer and WithAuthorizedKeysFile.
func WithAuthorizedKeys(keys ...secure.PublicKey) Option {
	return withSecure(func(sc *secure.Config) error {
		entries := make([]secure.AuthorizedKey, len(keys))
		for i, k := range keys {
			entries[i] = secure.AuthorizedKey{Key: k}
		}
		return sc.AddAuthorizedKeys(entries...)
	})
}

// WithAuthorizedPeer accepts the peer named name with this key only: the
// key may use no other name, and the name is reserved for it (or for the
// other keys listed with the same name).
func WithAuthorizedPeer(name string, key secure.PublicKey) Option {
	return withSecure(func(sc *secure.Config) error {
		if name == "" {
			return errors.New("slc: WithAuthorizedPeer: empty name")
		}
		return sc.AddAuthorizedKeys(secure.AuthorizedKey{Key: key, Name: name})
	})
}

// WithAuthorizedKeysFile accepts the peers listed in an authorized-keys
// file: one public key per line, optionally followed by the only node name
// that key may use; "#" starts a comment line (see
// secure.ParseAuthorizedKeys). The file is read by New, which fails if it
// is missing, invalid or writable by others, and read again when it
// changes.
func WithAuthorizedKeysFile(path string) Option {
	return withSecure(func(sc *secure.Config) error { return sc.UseAuthorizedKeysFile(path) })
}

// WithTrustOnFirstUse accepts any key the first time a node name is seen
// and pins it in the known-peers file at knownPeersPath (created with mode
// 0600, written atomically); a different key for a pinned name is then
// rejected with a "KEY CHANGED" error naming both fingerprints. Delete the
// name's line from the file to accept a new key.
func WithTrustOnFirstUse(knownPeersPath string) Option {
	return withSecure(func(sc *secure.Config) error { return sc.UseKnownPeers(knownPeersPath) })
}

// WithNetworkSecret mixes a secret shared by all nodes into every
// handshake (Noise XXpsk3): only nodes that have it can connect. Alone, it
// is the whole trust model, for quick lab setups: each process makes a new
// key pair, and any node with the secret may use any name, except that a
// live session stays bound to the key its peer first proved (another key
// claiming that peer's name is refused until the session ends). With
// WithIdentity it can be combined with authorized keys or trust on first
// use. The secret must be at least 16 bytes; use a long random one (an
// active attacker can test guesses offline).
func WithNetworkSecret(secret []byte) Option {
	return withSecure(func(sc *secure.Config) error { return sc.SetNetworkSecret(secret) })
}

// WithCipher sets which cipher this node prefers for its secure
// connections: secure.CipherAuto (the default: AES-256-GCM when this CPU
// has AES and carry-less multiplication instructions, ChaCha20-Poly1305
// otherwise), secure.CipherChaCha20Poly1305 or secure.CipherAESGCM. A
// connection uses AES-256-GCM when both nodes prefer it, ChaCha20-Poly1305
// otherwise, so nodes with different preferences, and older nodes, always
// connect. It applies to secure mode only: it needs WithIdentity or
// WithNetworkSecret like the other secure options. See docs/security.md,
// section 3.1.
func WithCipher(c secure.Cipher) Option {
	return withSecure(func(sc *secure.Config) error { return sc.SetCipher(c) })
}
