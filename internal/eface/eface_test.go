package eface_test

import (
	"fmt"
	"reflect"
	"testing"
	"unsafe"

	"github.com/slc-go/slc/internal/eface"
)

type point struct{ X, Y int }

func TestType(t *testing.T) {
	if eface.Type(nil) != nil {
		t.Fatal("Type(nil) is not nil")
	}
	if eface.Type(point{1, 2}) != eface.Type(point{}) {
		t.Fatal("two values of one type have different type words")
	}
	if eface.Type(point{}) == eface.Type(&point{}) || eface.Type(1) == eface.Type(int64(1)) {
		t.Fatal("different types share a type word")
	}
	// The type word is the reflect.Type's data word.
	if eface.Type(point{}) != eface.Data(reflect.TypeOf(point{})) {
		t.Fatal("the type word is not the descriptor reflect uses")
	}
}

func TestData(t *testing.T) {
	p := &point{1, 2}
	if eface.Data(p) != unsafe.Pointer(p) {
		t.Fatal("a pointer's data word is not the pointer")
	}
	if got := (*point)(eface.Data(point{3, 4})); *got != (point{3, 4}) {
		t.Fatalf("a struct's data word points at %+v", *got)
	}
}

func TestMake(t *testing.T) {
	p := &point{5, 6}
	v := eface.Make(eface.Type(point{}), unsafe.Pointer(p))
	if got, ok := v.(point); !ok || got != (point{5, 6}) || eface.Data(v) != unsafe.Pointer(p) {
		t.Fatalf("Make = %T %+v, want the point at p without a copy", v, v)
	}
	b := []byte("abc")
	h := &b
	if got, ok := eface.Make(eface.Type([]byte(nil)), unsafe.Pointer(h)).([]byte); !ok || string(got) != "abc" || &got[0] != &b[0] {
		t.Fatalf("Make of a []byte header = %q, %t", got, ok)
	}
	q := &point{7, 8}
	if got, ok := eface.Make(eface.Type(q), unsafe.Pointer(q)).(*point); !ok || got != q {
		t.Fatal("Make of a pointer, held directly, is not that pointer")
	}
}

// An interface holding a []byte, built around a header that already
// exists: no allocation.
func ExampleMake() {
	data := []byte("hello")
	header := &data // never written again
	v := eface.Make(eface.Type([]byte(nil)), unsafe.Pointer(header))
	fmt.Printf("%T %s\n", v, v)
	// Output: []uint8 hello
}
