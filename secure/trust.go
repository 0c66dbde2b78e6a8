package secure

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/slc-go/slc/internal/wire"
)

// AuthorizedKey is one entry of an authorized-keys list: a key, and the
// node name it may use, or "" for any name not reserved by another entry.
type AuthorizedKey struct {
	Key  PublicKey
	Name string
}

// String returns the entry as a line of an authorized-keys file.
func (a AuthorizedKey) String() string {
	if a.Name == "" {
		return a.Key.String()
	}
	return a.Key.String() + " " + a.Name
}

// ParseAuthorizedKeys reads an authorized-keys file: one entry per line,
// the public key in its text form, then optionally white space and the
// node name that key may use (the rest of the line, which may contain
// spaces). Empty lines and lines whose first non-blank character is "#"
// are ignored; there are no comments after an entry.
//
//	# lab machines
//	x25519:HSMXcG8j5M1GVTtrwaUfpp4Tf3BfBH5JLe2RqDSpPks= lab-camera
//	x25519:ZK2lyHgDzQFYgx9lZWYTk1CmjSXNmBUJt9WIXXB1B3E= workstation
//	x25519:0nJsX0NcBr3QYKqYP1V4bN1wNl8cIl2xF+QX9GKvSzE=
//
// A key listed with a name may only use that name (or the other names it is
// listed with); a name listed for some keys is reserved for them. A key
// listed without a name may use any other name.
func ParseAuthorizedKeys(data []byte) ([]AuthorizedKey, error) {
	return parseKeyLines(data, "authorized keys", false)
}

// parseKeyLines parses the line format shared by authorized-keys and
// known-peers files.
func parseKeyLines(data []byte, what string, needName bool) ([]AuthorizedKey, error) {
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("secure: %s: larger than %d bytes", what, maxKeyFile)
	}
	var out []AuthorizedKey
	n := 0
	for line := range bytes.Lines(data) {
		n++
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		keyText, name := s, ""
		if i := strings.IndexFunc(s, unicode.IsSpace); i >= 0 {
			keyText, name = s[:i], strings.TrimSpace(s[i:])
		}
		key, err := ParsePublicKey(keyText)
		if err != nil {
			return nil, fmt.Errorf("secure: %s line %d: %w", what, n, err)
		}
		if name != "" && !wire.ValidName(name) {
			return nil, fmt.Errorf("secure: %s line %d: invalid node name %q", what, n, clip(name, 60))
		}
		if needName && name == "" {
			return nil, fmt.Errorf("secure: %s line %d: a key without a node name", what, n)
		}
		out = append(out, AuthorizedKey{Key: key, Name: name})
	}
	return out, nil
}

// LoadAuthorizedKeys reads an authorized-keys file (see
// ParseAuthorizedKeys). It refuses a file that group or others may write.
func LoadAuthorizedKeys(path string) ([]AuthorizedKey, error) {
	data, err := readPrivateFile(path, "authorized keys file", 0o022)
	if err != nil {
		return nil, err
	}
	keys, err := ParseAuthorizedKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// authSet is an authorized-keys list ready for lookups.
type authSet struct {
	names map[PublicKey][]string // nil slice: listed, any name
	any   map[PublicKey]bool     // listed at least once without a name
	owner map[string][]PublicKey // names reserved by named entries
}

func newAuthSet(entries ...[]AuthorizedKey) *authSet {
	s := &authSet{names: map[PublicKey][]string{}, any: map[PublicKey]bool{}, owner: map[string][]PublicKey{}}
	for _, list := range entries {
		for _, e := range list {
			if _, ok := s.names[e.Key]; !ok {
				s.names[e.Key] = nil
			}
			if e.Name == "" {
				s.any[e.Key] = true
				continue
			}
			if !slices.Contains(s.names[e.Key], e.Name) {
				s.names[e.Key] = append(s.names[e.Key], e.Name)
			}
			if !slices.Contains(s.owner[e.Name], e.Key) {
				s.owner[e.Name] = append(s.owner[e.Name], e.Key)
			}
		}
	}
	return s
}

func (s *authSet) listed(k PublicKey) bool { _, ok := s.names[k]; return ok }

// check decides whether key may use name. wildcard reports that only an
// unnamed entry allows it (the caller then binds the name to the key).
func (s *authSet) check(name string, key PublicKey) (wildcard bool, err error) {
	names, ok := s.names[key]
	if !ok {
		return false, unauthorized("key %s is not in this node's authorized keys", key.Fingerprint())
	}
	if slices.Contains(names, name) {
		return false, nil
	}
	if owners := s.owner[name]; len(owners) > 0 {
		return false, unauthorized("the name %q is reserved for another key in this node's authorized keys; key %s may not use it",
			name, key.Fingerprint())
	}
	if !s.any[key] {
		return false, unauthorized("key %s is authorized only as %s, not %q", key.Fingerprint(), quoteList(names), name)
	}
	return true, nil
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, " or ")
}

// authFile is an authorized-keys file, read again when it changes.
type authFile struct {
	path string
	mu   sync.Mutex
	st   stamp
	keys []AuthorizedKey
	gen  uint64 // counts successful reads
	err  error  // the last read failed: reject until the file is fixed
}

func openAuthFile(path string) (*authFile, error) {
	st, err := statStamp(path)
	if err != nil {
		return nil, fmt.Errorf("secure: authorized keys file: %w", err)
	}
	keys, err := LoadAuthorizedKeys(path)
	if err != nil {
		return nil, err
	}
	return &authFile{path: path, st: st, keys: keys, gen: 1}, nil
}

// current returns the file's entries and their generation, reading the
// file again if it changed since the last read.
func (f *authFile) current() ([]AuthorizedKey, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := statStamp(f.path)
	if err == nil && st.missing {
		err = fmt.Errorf("%s was removed", f.path)
	}
	if err != nil {
		f.err = err
		return nil, 0, err
	}
	if !st.same(f.st) || f.err != nil {
		keys, err := LoadAuthorizedKeys(f.path)
		f.st, f.err = st, err
		if err != nil {
			return nil, 0, err
		}
		f.keys = keys
		f.gen++
	}
	return f.keys, f.gen, nil
}

// Known peers (trust on first use).
//
// A known-peers file has the authorized-keys line format with a name on
// every line, each name at most once:
//
//	# slc known peers: the key each node name was first seen with
//	x25519:HSMXcG8j5M1GVTtrwaUfpp4Tf3BfBH5JLe2RqDSpPks= lab-camera

// ParseKnownPeers reads a known-peers file: the authorized-keys line format
// (see ParseAuthorizedKeys) with a node name on every line, each name at
// most once.
func ParseKnownPeers(data []byte) (map[string]PublicKey, error) {
	list, err := parseKeyLines(data, "known peers", true)
	if err != nil {
		return nil, err
	}
	m := make(map[string]PublicKey, len(list))
	for _, e := range list {
		if k, dup := m[e.Name]; dup && k != e.Key {
			return nil, fmt.Errorf("secure: known peers: the name %q is listed twice with different keys", e.Name)
		}
		m[e.Name] = e.Key
	}
	return m, nil
}

// formatKnownPeers writes pins in the known-peers format, sorted by name.
func formatKnownPeers(pins map[string]PublicKey) []byte {
	var b bytes.Buffer
	b.WriteString("# slc known peers: the key each node name was first seen with (trust on first use).\n")
	b.WriteString("# To accept a peer's new key, delete its line.\n")
	for _, name := range slices.Sorted(maps.Keys(pins)) {
		b.WriteString(pins[name].String() + " " + name + "\n")
	}
	return b.Bytes()
}

// knownPeers pins the key of each peer name in a file, on first use.
type knownPeers struct {
	path string
	mu   sync.Mutex
	st   stamp
	pins map[string]PublicKey
}

func openKnownPeers(path string) (*knownPeers, error) {
	k := &knownPeers{path: path}
	if err := k.reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// reload reads the file if it changed since the last read (or for the
// first time). A missing file means no pins yet.
func (k *knownPeers) reload() error {
	st, err := statStamp(k.path)
	if err != nil {
		return fmt.Errorf("secure: known peers file: %w", err)
	}
	if k.pins != nil && st.same(k.st) {
		return nil
	}
	pins := map[string]PublicKey{}
	if !st.missing {
		data, err := readPrivateFile(k.path, "known peers file", 0o022)
		if err != nil {
			return err
		}
		if pins, err = ParseKnownPeers(data); err != nil {
			return fmt.Errorf("%s: %w", k.path, err)
		}
	}
	k.st, k.pins = st, pins
	return nil
}

// check accepts key for name if it is the pinned one, or pins it if the
// name is new.
func (k *knownPeers) check(name string, key PublicKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.reload(); err != nil {
		return &wire.ProtocolError{Code: wire.CodeInternal, Reason: err.Error()}
	}
	if pinned, ok := k.pins[name]; ok {
		if pinned == key {
			return nil
		}
		return unauthorized("KEY CHANGED for peer %q: it presented key %s, but key %s is pinned in the known-peers file. "+
			"Someone may be impersonating it. If its key was changed on purpose, delete its line from the known-peers file",
			name, key.Fingerprint(), pinned.Fingerprint())
	}
	pins := maps.Clone(k.pins)
	pins[name] = key
	if err := writeFileAtomic(k.path, formatKnownPeers(pins)); err != nil {
		return &wire.ProtocolError{Code: wire.CodeInternal, Reason: fmt.Sprintf("cannot record the key of %q in the known-peers file: %v", name, err)}
	}
	st, err := statStamp(k.path)
	if err != nil {
		return &wire.ProtocolError{Code: wire.CodeInternal, Reason: err.Error()}
	}
	k.pins, k.st = pins, st
	return nil
}

func (k *knownPeers) lookup(name string) (PublicKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	pk, ok := k.pins[name]
	return pk, ok
}

func unauthorized(format string, args ...any) error {
	return &wire.ProtocolError{Code: wire.CodeUnauthorized, Reason: fmt.Sprintf(format, args...)}
}
