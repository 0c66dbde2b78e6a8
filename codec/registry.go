package codec

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// MaxCodecName is the longest serializer or compressor name, in bytes,
// that can be registered (and announced in the hello exchange).
const MaxCodecName = 64

// Entry describes a registered serializer or compressor, as announced in
// the hello exchange.
type Entry struct {
	ID      ID
	Name    string
	Version uint8
}

// codecLike is what serializers and compressors have in common.
type codecLike interface {
	Name() string
	Version() uint8
}

// table is an immutable snapshot of one registry. Writers copy it, change
// the copy and publish it; readers load it without locking.
type table[C codecLike] struct {
	byID   [256]C
	has    [256]bool
	byName map[string]ID
	next   int // next custom ID; 256 when exhausted
}

// registry holds serializers or compressors.
type registry[C codecLike] struct {
	kind string // "serializer" or "compressor", for errors
	mu   sync.Mutex
	cur  atomic.Pointer[table[C]]
}

func newRegistry[C codecLike](kind string, builtins map[ID]C) *registry[C] {
	t := &table[C]{byName: make(map[string]ID, len(builtins)), next: int(FirstCustom)}
	for id, c := range builtins {
		t.byID[id] = c
		t.has[id] = true
		t.byName[c.Name()] = id
	}
	r := &registry[C]{kind: kind}
	r.cur.Store(t)
	return r
}

func (r *registry[C]) register(c C, isNil bool) (ID, error) {
	if isNil {
		return 0, fmt.Errorf("codec: register %s: nil", r.kind)
	}
	name := c.Name()
	if err := checkCodecName(name); err != nil {
		return 0, fmt.Errorf("codec: register %s: %w", r.kind, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	if id, ok := old.byName[name]; ok {
		return 0, fmt.Errorf("codec: register %s: name %q already registered with ID %d", r.kind, name, id)
	}
	if old.next > 255 {
		return 0, fmt.Errorf("codec: register %s %q: all %d custom IDs are taken", r.kind, name, 256-int(FirstCustom))
	}
	t := &table[C]{byID: old.byID, has: old.has, byName: make(map[string]ID, len(old.byName)+1), next: old.next + 1}
	for k, v := range old.byName {
		t.byName[k] = v
	}
	id := ID(old.next)
	t.byID[id] = c
	t.has[id] = true
	t.byName[name] = id
	r.cur.Store(t)
	return id, nil
}

func (r *registry[C]) byID(id ID) (C, bool) {
	t := r.cur.Load()
	return t.byID[id], t.has[id]
}

func (r *registry[C]) byName(name string) (ID, C, bool) {
	t := r.cur.Load()
	id, ok := t.byName[name]
	if !ok {
		var zero C
		return 0, zero, false
	}
	return id, t.byID[id], true
}

func (r *registry[C]) entries() []Entry {
	t := r.cur.Load()
	out := make([]Entry, 0, len(t.byName))
	for id := range t.byID {
		if t.has[id] {
			c := t.byID[id]
			out = append(out, Entry{ID: ID(id), Name: c.Name(), Version: c.Version()})
		}
	}
	return out
}

func (r *registry[C]) names() []string {
	t := r.cur.Load()
	names := make([]string, 0, len(t.byName))
	for id := range t.byID {
		if t.has[id] {
			names = append(names, t.byID[id].Name())
		}
	}
	return names
}

func checkCodecName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > MaxCodecName:
		return fmt.Errorf("name %.16q... is longer than %d bytes", name, MaxCodecName)
	}
	return nil
}

var serializers = newRegistry("serializer", map[ID]Serializer{
	Raw:     defaultRaw,
	Msgpack: defaultMsgpack,
	JSON:    defaultJSON,
})

var compressors = newRegistry("compressor", map[ID]Compressor{
	None: defaultNone,
	S2:   defaultS2,
	Zstd: defaultZstd,
	Gzip: defaultGzip,
})

// RegisterSerializer adds s to the process-wide serializer registry under
// the next free ID, starting at FirstCustom. It fails if s is nil, if its
// name is empty, longer than MaxCodecName or already registered (the
// built-in names "raw", "msgpack" and "json" included), or if all IDs are
// taken.
func RegisterSerializer(s Serializer) (ID, error) {
	return serializers.register(s, s == nil)
}

// RegisterCompressor adds c to the process-wide compressor registry under
// the next free ID, starting at FirstCustom. It fails if c is nil, if its
// name is empty, longer than MaxCodecName or already registered (the
// built-in names "none", "s2", "zstd" and "gzip" included), or if all IDs
// are taken.
func RegisterCompressor(c Compressor) (ID, error) {
	return compressors.register(c, c == nil)
}

// SerializerByID returns the serializer registered under id.
func SerializerByID(id ID) (Serializer, bool) { return serializers.byID(id) }

// SerializerByName returns the serializer registered under name and its ID.
func SerializerByName(name string) (ID, Serializer, bool) { return serializers.byName(name) }

// CompressorByID returns the compressor registered under id.
func CompressorByID(id ID) (Compressor, bool) { return compressors.byID(id) }

// CompressorByName returns the compressor registered under name and its ID.
func CompressorByName(name string) (ID, Compressor, bool) { return compressors.byName(name) }

// Serializers lists the registered serializers, built-ins included, sorted
// by ID. The slice is a fresh copy.
func Serializers() []Entry { return serializers.entries() }

// Compressors lists the registered compressors, built-ins included, sorted
// by ID. The slice is a fresh copy.
func Compressors() []Entry { return compressors.entries() }

// ParseCompressor returns the ID of the compressor called name: "none",
// "s2", "zstd", "gzip" or a registered name. It is meant for command-line
// flags; the error lists the valid names.
func ParseCompressor(name string) (ID, error) {
	if id, _, ok := compressors.byName(name); ok {
		return id, nil
	}
	names := compressors.names()
	slices.Sort(names)
	return 0, fmt.Errorf("codec: unknown compressor %q (want one of %s)", name, strings.Join(names, ", "))
}
