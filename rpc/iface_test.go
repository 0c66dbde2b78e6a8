package rpc_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/slc-go/slc/rpc"
)

func TestValidate(t *testing.T) {
	arg := func(name, typ string) rpc.Argument { return rpc.Argument{Name: name, Type: typ, Description: "d"} }
	ok := rpc.Interface{Name: "a.B", Description: "d",
		Methods: []rpc.Method{{Name: "m", Description: "d", In: []rpc.Argument{arg("x", rpc.TypeInt)}, Out: []rpc.Argument{arg("y", "")}}},
		Events:  []rpc.Event{{Name: "e", Description: "d", Args: []rpc.Argument{arg("z", rpc.TypeList)}}}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid interface: %v", err)
	}
	mod := func(f func(*rpc.Interface)) rpc.Interface {
		i := ok
		i.Methods = []rpc.Method{ok.Methods[0]}
		i.Methods[0].In = append([]rpc.Argument(nil), ok.Methods[0].In...)
		i.Events = []rpc.Event{ok.Events[0]}
		f(&i)
		return i
	}
	cases := []struct {
		iface rpc.Interface
		want  string
	}{
		{mod(func(i *rpc.Interface) { i.Name = "" }), `interface name ""`},
		{mod(func(i *rpc.Interface) { i.Name = "a..B" }), `interface name "a..B"`},
		{mod(func(i *rpc.Interface) { i.Name = "a.9B" }), `interface name "a.9B"`},
		{mod(func(i *rpc.Interface) { i.Description = " " }), "interface a.B: no description"},
		{mod(func(i *rpc.Interface) { i.Methods[0].Name = "my-method" }), `method name "my-method" is not an identifier`},
		{mod(func(i *rpc.Interface) { i.Methods = append(i.Methods, i.Methods[0]) }), `method "m" declared twice`},
		{mod(func(i *rpc.Interface) { i.Methods[0].Description = "" }), "method a.B.m: no description"},
		{mod(func(i *rpc.Interface) { i.Methods[0].In = append(i.Methods[0].In, arg("x", "")) }), `method a.B.m (in): argument "x" declared twice`},
		{mod(func(i *rpc.Interface) { i.Methods[0].In[0].Type = "integer" }), `argument x: unknown type "integer"`},
		{mod(func(i *rpc.Interface) { i.Methods[0].In[0].Description = "" }), "argument x: no description"},
		{mod(func(i *rpc.Interface) { i.Events[0].Name = "" }), `event name "" is not an identifier`},
		{mod(func(i *rpc.Interface) { i.Events = append(i.Events, i.Events[0]) }), `event "e" declared twice`},
		{mod(func(i *rpc.Interface) { i.Events[0].Args[0].Name = "1z" }), `event a.B.e: argument name "1z"`},
	}
	for i, tc := range cases {
		err := tc.iface.Validate()
		var de *rpc.DeclarationError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d. Validate() = %v; want a DeclarationError saying %q", i, err, tc.want)
		}
		if _, err := rpc.NewImplementation(tc.iface); err == nil {
			t.Errorf("%d. NewImplementation accepted an invalid interface", i)
		}
	}
}

func TestLoadInterface(t *testing.T) {
	i, err := rpc.LoadInterface([]byte(`{"name": "com.example.Timer", "description": "Timers.",
		"methods": [{"name": "add", "description": "Start one.",
			"in": [{"name": "seconds", "type": "float", "description": "Delay."}]}],
		"events": [{"name": "timeout", "description": "Expired.", "args": [{"name": "name", "description": "Which."}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := i.Method("add"); !ok || m.In[0].Type != rpc.TypeFloat {
		t.Fatalf("loaded %+v", i)
	}
	if _, err := rpc.LoadInterface([]byte(`{"name": "x.Y", "descripton": "typo"}`)); err == nil {
		t.Error("an unknown field was accepted")
	}
	if _, err := rpc.LoadInterface([]byte(`{"name": "x.Y"}`)); err == nil {
		t.Error("a declaration without description was accepted")
	}
}

func TestValidPath(t *testing.T) {
	for _, p := range []string{"/", "/a", "/a/b", "/timers/kitchen-1", "/ü"} {
		if !rpc.ValidPath(p) {
			t.Errorf("ValidPath(%q) = false", p)
		}
	}
	for _, p := range []string{"", "a", "/a/", "//", "/a//b", "/a b", "/a\n"} {
		if rpc.ValidPath(p) {
			t.Errorf("ValidPath(%q) = true", p)
		}
	}
}

func TestNewMethodChecksStructs(t *testing.T) {
	iface := rpc.Interface{Name: "a.B", Description: "d", Methods: []rpc.Method{{Name: "m", Description: "d",
		In:  []rpc.Argument{{Name: "count", Type: rpc.TypeInt, Description: "d"}, {Name: "tags", Type: rpc.TypeList, Description: "d"}},
		Out: []rpc.Argument{{Name: "ok", Type: rpc.TypeBool, Description: "d"}}}}}
	type In struct {
		Count int
		Tags  []string
	}
	type Out struct {
		OK bool // argument "ok"
	}
	if _, err := rpc.NewMethod[In, Out](iface, "m"); err != nil {
		t.Fatalf("matching structs: %v", err)
	}
	type missing struct{ Count int }
	type extra struct {
		Count int
		Tags  []string
		More  string
	}
	type wrong struct {
		Count string
		Tags  []string
	}
	type Tagged struct {
		Flag bool `rpc:"ok"`
	}
	for i, err := range []error{
		func() error { _, err := rpc.NewMethod[missing, Out](iface, "m"); return err }(),
		func() error { _, err := rpc.NewMethod[extra, Out](iface, "m"); return err }(),
		func() error { _, err := rpc.NewMethod[wrong, Out](iface, "m"); return err }(),
		func() error { _, err := rpc.NewMethod[In, int](iface, "m"); return err }(),
		func() error { _, err := rpc.NewMethod[In, Out](iface, "n"); return err }(),
	} {
		if err == nil {
			t.Errorf("%d. NewMethod accepted mismatched types", i)
		}
	}
	if _, err := rpc.NewMethod[In, Tagged](iface, "m"); err != nil {
		t.Errorf("a field tagged rpc:\"ok\" is argument ok: %v", err)
	}
	if _, err := rpc.NewEvent[In](iface, "nope"); err == nil {
		t.Error("NewEvent accepted an unknown event")
	}
}
