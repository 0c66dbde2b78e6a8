// Package eface reads and builds interface values word by word: the type
// word (the address of the dynamic type's descriptor) and the data word.
//
// It holds, in one place, the layout of an interface that the codec and
// the connection reader rely on to avoid an allocation per message: an
// interface is two words, a type and a pointer to the value (or, for
// types held directly, such as pointers, the value itself). A value
// placed in an interface with Make must never be written again, as the
// runtime assumes of every interface's value.
package eface
