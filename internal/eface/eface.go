package eface

import "unsafe"

// Type returns v's type word: the address of its dynamic type's
// descriptor, the same for every value of one type, nil for a nil
// interface. Hashing it is cheaper than hashing a reflect.Type.
func Type(v any) unsafe.Pointer {
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&v))[0]
}

// Data returns v's data word: a pointer to the value, or the value itself
// for a type an interface holds directly (a pointer, a map, a channel, a
// function, or a struct or array of one of those alone).
func Data(v any) unsafe.Pointer {
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&v))[1]
}

// Make returns the interface whose type word is typ (from Type of a value
// of that type) and whose data word is p. For a type not held directly,
// p points at a value of that type that nothing writes again: this is the
// interface the conversion of that value would give, without its copy.
func Make(typ, p unsafe.Pointer) any {
	var v any
	w := (*[2]unsafe.Pointer)(unsafe.Pointer(&v))
	w[0], w[1] = typ, p
	return v
}
