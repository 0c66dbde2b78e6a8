package codec

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/slc-go/slc/internal/eface"
)

// MaxTypeName is the longest type name, in bytes, that RegisterType
// accepts.
const MaxTypeName = 255

// typeInfo is what the type registry knows about one registered type.
type typeInfo struct {
	name   string
	typ    reflect.Type
	decode func(s Serializer, data []byte) (any, error)
}

// typeTable is an immutable snapshot of the type registry.
type typeTable struct {
	byType map[unsafe.Pointer]string // keyed by the type's descriptor (typeKey)
	byName map[string]*typeInfo
}

var (
	typesMu sync.Mutex
	types   atomic.Pointer[typeTable]
)

func init() {
	types.Store(&typeTable{
		byType: map[unsafe.Pointer]string{},
		byName: map[string]*typeInfo{},
	})
}

// RegisterType maps the Go type T to name, in both directions, for the
// whole process: TypeName reports name for values of type T (and *T), and
// Decode decodes bodies sent under name into a T.
//
// It fails if name is empty or longer than MaxTypeName bytes, if T is an
// interface type, if name is registered for another type, or if T is
// registered under another name. Registering the same T and name again
// does nothing and returns nil.
func RegisterType[T any](name string) error {
	t := reflect.TypeFor[T]()
	switch {
	case name == "":
		return errors.New("codec: register type: empty name")
	case len(name) > MaxTypeName:
		return fmt.Errorf("codec: register type %v: name is longer than %d bytes", t, MaxTypeName)
	case t.Kind() == reflect.Interface:
		return fmt.Errorf("codec: register type %q: %v is an interface type", name, t)
	}
	typesMu.Lock()
	defer typesMu.Unlock()
	old := types.Load()
	if info, ok := old.byName[name]; ok {
		if info.typ == t {
			return nil
		}
		return fmt.Errorf("codec: register type %v: name %q is already registered for %v", t, name, info.typ)
	}
	if other, ok := old.byType[typeKey(t)]; ok {
		return fmt.Errorf("codec: register type %v as %q: already registered as %q", t, name, other)
	}
	nt := &typeTable{
		byType: make(map[unsafe.Pointer]string, len(old.byType)+1),
		byName: make(map[string]*typeInfo, len(old.byName)+1),
	}
	for k, v := range old.byType {
		nt.byType[k] = v
	}
	for k, v := range old.byName {
		nt.byName[k] = v
	}
	nt.byType[typeKey(t)] = name
	nt.byName[name] = &typeInfo{name: name, typ: t, decode: decoderFor[T]()}
	types.Store(nt)
	return nil
}

// decoderFor returns the function that decodes a body into a new T and
// returns it as an interface value.
//
// Converting a T to an interface copies it into a new allocation. For
// types an interface holds by pointer, the function instead makes the
// interface point at the T it decoded into, which nothing else references:
// the layout the runtime gives any interface holding a T (a type word and
// a pointer to a T that is never written again), without the copy.
func decoderFor[T any]() func(s Serializer, data []byte) (any, error) {
	var plan typedPlan
	t := reflect.TypeFor[T]()
	unmarshal := func(s Serializer, data []byte, p *T) error {
		if ms, ok := s.(*msgpackSerializer); ok {
			return ms.unmarshalPlanned(data, p, plan.get(t), unsafe.Pointer(p))
		}
		return s.Unmarshal(data, p)
	}
	if isDirectIface(t) {
		return func(s Serializer, data []byte) (any, error) {
			p := new(T)
			if err := unmarshal(s, data, p); err != nil {
				return nil, err
			}
			return *p, nil
		}
	}
	var zero T
	typ := eface.Type(zero)
	return func(s Serializer, data []byte) (any, error) {
		p := new(T)
		if err := unmarshal(s, data, p); err != nil {
			return nil, err
		}
		return eface.Make(typ, unsafe.Pointer(p)), nil
	}
}

// typedPlan holds the msgpack plan of a registered type for its decoder,
// looked up on first use: decoding then skips planOf's reflection and
// cache lookup. The plan of a type never changes once made.
type typedPlan struct {
	done atomic.Bool
	p    atomic.Pointer[fastPlan]
}

// get returns t's plan, or nil when t is no struct or has no plan.
func (tp *typedPlan) get(t reflect.Type) *fastPlan {
	if tp.done.Load() {
		return tp.p.Load()
	}
	var p *fastPlan
	if t.Kind() == reflect.Struct {
		// Not under a lock: making a plan may decode with this package.
		p = plans.lookup(t)
	}
	tp.p.Store(p)
	tp.done.Store(true)
	return p
}

// TypeName returns the name registered for the dynamic type of v. A *T
// whose T is registered (and *T itself is not) reports T's name. It does
// not allocate.
func TypeName(v any) (string, bool) {
	// The interface's type word is the address of the dynamic type's
	// descriptor, the key typeKey gives: hashing it is cheaper than
	// hashing a reflect.Type.
	desc := eface.Type(v)
	if desc == nil {
		return "", false
	}
	byType := types.Load().byType
	if name, ok := byType[desc]; ok {
		return name, true
	}
	if t := reflect.TypeOf(v); t.Kind() == reflect.Pointer {
		name, ok := byType[typeKey(t.Elem())]
		return name, ok
	}
	return "", false
}

// Decode decodes data, produced by s. If name is a registered type name,
// the result is a value of that type: a T, not a *T. Otherwise it is
// s.Generic(data).
func Decode(name string, s Serializer, data []byte) (any, error) {
	if s == nil {
		return nil, errors.New("codec: decode: nil serializer")
	}
	if info, ok := types.Load().byName[name]; ok {
		return info.decode(s, data)
	}
	return s.Generic(data)
}

// DecodeBytesName is Decode for a name held in a byte slice, such as a
// frame being parsed. Looking the name up does not allocate.
func DecodeBytesName(name []byte, s Serializer, data []byte) (any, error) {
	if s == nil {
		return nil, errors.New("codec: decode: nil serializer")
	}
	if info, ok := types.Load().byName[string(name)]; ok {
		return info.decode(s, data)
	}
	return s.Generic(data)
}

// Types returns the registered type names, sorted.
func Types() []string {
	t := types.Load()
	names := make([]string, 0, len(t.byName))
	for name := range t.byName {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
