package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/secure"
)

// secureFlags are the global flags that put every node a command starts in
// secure mode (see docs/security.md). With none of them set, nodes run in
// plain mode.
type secureFlags struct {
	secure         bool   // --secure: secure mode with the default files
	identity       string // --key (or --identity): this node's private key file
	authorizedKeys string // --authorized-keys: the peers it trusts
	knownPeers     string // --known-peers: trust on first use
	secretFile     string // --network-secret-file: a shared network secret
	cipher         cipherFlag
}

// cipherFlag is the value of --cipher: the cipher preference of secure
// mode (secure.Cipher). The zero value leaves the library's default.
type cipherFlag struct {
	c   secure.Cipher
	set bool
}

func (f *cipherFlag) String() string { return f.c.String() }

func (f *cipherFlag) Set(s string) error {
	c, err := secure.ParseCipher(s)
	if err != nil {
		return errors.New("want auto, chacha20poly1305 or aesgcm")
	}
	f.c, f.set = c, true
	return nil
}

func (f *cipherFlag) Type() string { return "auto|chacha20poly1305|aesgcm" }

func (s *secureFlags) addFlags(pf *pflag.FlagSet) {
	pf.BoolVar(&s.secure, "secure", false, "secure mode: authenticate and encrypt every connection (default key "+defaultKeyFile()+", default authorized keys "+defaultAuthorizedKeysFile()+")")
	pf.StringVar(&s.identity, "key", "", "secure mode: this node's private key `file` (made with \"slc keygen\")")
	pf.StringVar(&s.identity, "identity", "", "the same as --key")
	pf.StringVar(&s.authorizedKeys, "authorized-keys", "", "secure mode: accept only the peers whose keys this `file` lists")
	pf.StringVar(&s.knownPeers, "known-peers", "", "secure mode: trust each peer's key on first use and pin it in this `file`")
	pf.StringVar(&s.secretFile, "network-secret-file", "", "secure mode: accept only peers that know the network secret in this `file`")
	pf.Var(&s.cipher, "cipher", "secure mode: the cipher this node prefers; a connection uses aesgcm (AES-256-GCM) when both ends prefer it, else chacha20poly1305 (auto: aesgcm if the CPU has AES instructions)")
}

// set reports whether any secure-mode flag was given.
func (s *secureFlags) set() bool {
	return s.secure || s.identity != "" || s.authorizedKeys != "" || s.knownPeers != "" || s.secretFile != ""
}

// configDir is where --secure looks for its default files.
func configDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "slc")
	}
	return filepath.Join(".", ".slc")
}

func defaultKeyFile() string            { return filepath.Join(configDir(), "key") }
func defaultAuthorizedKeysFile() string { return filepath.Join(configDir(), "authorized_keys") }

// resolve fills in the default files for --secure, and reports a clear
// error when one is missing.
func (s *secureFlags) resolve() error {
	if !s.secure {
		return nil
	}
	if s.identity == "" && s.secretFile == "" {
		s.identity = defaultKeyFile()
		if _, err := os.Stat(s.identity); err != nil {
			return fmt.Errorf("--secure: no key at %s: make one with \"slc keygen %s\", or give --key FILE", s.identity, s.identity)
		}
	}
	if s.authorizedKeys == "" && s.knownPeers == "" && s.secretFile == "" {
		s.authorizedKeys = defaultAuthorizedKeysFile()
		if _, err := os.Stat(s.authorizedKeys); err != nil {
			return fmt.Errorf("--secure: no authorized keys at %s: add the peers' public keys there (one per line, as \"slc keygen\" prints them), or give --authorized-keys, --known-peers or --network-secret-file", s.authorizedKeys)
		}
	}
	return nil
}

// options returns the node options for the flags. Invalid files and
// combinations are reported by slc.New, which applies them.
func (s *secureFlags) options() []slc.Option {
	var opts []slc.Option
	if err := s.resolve(); err != nil {
		return append(opts, func(*slc.Config) error { return err })
	}
	if s.identity != "" {
		opts = append(opts, slc.WithIdentityFile(s.identity))
	}
	if s.authorizedKeys != "" {
		opts = append(opts, slc.WithAuthorizedKeysFile(s.authorizedKeys))
	}
	if s.knownPeers != "" {
		opts = append(opts, slc.WithTrustOnFirstUse(s.knownPeers))
	}
	if s.cipher.set {
		opts = append(opts, slc.WithCipher(s.cipher.c))
	}
	if s.secretFile != "" {
		opts = append(opts, func(c *slc.Config) error {
			secret, err := readSecret(s.secretFile)
			if err != nil {
				return err
			}
			return slc.WithNetworkSecret(secret)(c)
		})
	}
	return opts
}

// readSecret reads a network secret file: its contents without the
// trailing line break.
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("network secret: %w", err)
	}
	return bytes.TrimRight(b, "\r\n"), nil
}
