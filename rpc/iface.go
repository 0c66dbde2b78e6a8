package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Interface declares what an implementation offers: methods that callers
// invoke and events that subscribers receive. It is plain data: build it
// as a literal, or load it from JSON with LoadInterface. Check it with
// Validate (NewImplementation, NewMethod and NewEvent do) before use.
//
// Names are dotted identifiers for interfaces ("com.example.Timer") and
// identifiers for methods, events and arguments ("add", "seconds"). Every
// item carries a description, which introspection (Node.Describe, slc
// describe) shows.
type Interface struct {
	Name        string   `json:"name" msgpack:"name"`
	Description string   `json:"description" msgpack:"description"`
	Methods     []Method `json:"methods,omitempty" msgpack:"methods,omitempty"`
	Events      []Event  `json:"events,omitempty" msgpack:"events,omitempty"`
}

// Method is a method of an interface: its name, description, and the
// arguments it takes (In) and returns (Out).
type Method struct {
	Name        string     `json:"name" msgpack:"name"`
	Description string     `json:"description" msgpack:"description"`
	In          []Argument `json:"in,omitempty" msgpack:"in,omitempty"`
	Out         []Argument `json:"out,omitempty" msgpack:"out,omitempty"`
}

// Event is an event of an interface: its name, description and the
// arguments it carries.
type Event struct {
	Name        string     `json:"name" msgpack:"name"`
	Description string     `json:"description" msgpack:"description"`
	Args        []Argument `json:"args,omitempty" msgpack:"args,omitempty"`
}

// Argument is a named argument of a method or an event. Type, when set,
// is checked on every call and event: one of the Type constants. Every
// declared argument is required.
type Argument struct {
	Name        string `json:"name" msgpack:"name"`
	Description string `json:"description" msgpack:"description"`
	Type        string `json:"type,omitempty" msgpack:"type,omitempty"`
}

// Argument types. TypeAny (or "") accepts any value.
const (
	TypeAny    = "any"
	TypeBool   = "bool"
	TypeInt    = "int"    // any integer
	TypeFloat  = "float"  // any number
	TypeString = "string" // UTF-8 text
	TypeBytes  = "bytes"  // a byte string
	TypeList   = "list"   // an array
	TypeMap    = "map"    // a map with string keys (a struct in the typed layer)
)

var argTypes = map[string]bool{"": true, TypeAny: true, TypeBool: true, TypeInt: true, TypeFloat: true,
	TypeString: true, TypeBytes: true, TypeList: true, TypeMap: true}

// LoadInterface parses an interface declared in JSON and validates it:
//
//	{"name": "com.example.Timer", "description": "...",
//	 "methods": [{"name": "add", "description": "...",
//	              "in": [{"name": "seconds", "type": "float", "description": "..."}]}],
//	 "events": [{"name": "timeout", "description": "...", "args": [...]}]}
func LoadInterface(data []byte) (Interface, error) {
	var i Interface
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&i); err != nil {
		return Interface{}, fmt.Errorf("rpc: interface declaration: %w", err)
	}
	if err := i.Validate(); err != nil {
		return Interface{}, err
	}
	return i, nil
}

// Validate reports every problem of the declaration: invalid or duplicate
// names, missing descriptions, unknown argument types.
func (i Interface) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !ValidInterfaceName(i.Name) {
		bad("interface name %q: want dot-separated identifiers, like com.example.Timer", i.Name)
	}
	if strings.TrimSpace(i.Description) == "" {
		bad("interface %s: no description", i.Name)
	}
	checkArgs := func(what string, args []Argument) {
		seen := map[string]bool{}
		for _, a := range args {
			switch {
			case !validIdent(a.Name):
				bad("%s: argument name %q is not an identifier", what, a.Name)
			case seen[a.Name]:
				bad("%s: argument %q declared twice", what, a.Name)
			}
			seen[a.Name] = true
			if strings.TrimSpace(a.Description) == "" {
				bad("%s: argument %s: no description", what, a.Name)
			}
			if !argTypes[a.Type] {
				bad("%s: argument %s: unknown type %q", what, a.Name, a.Type)
			}
		}
	}
	seen := map[string]bool{}
	for _, m := range i.Methods {
		what := fmt.Sprintf("method %s.%s", i.Name, m.Name)
		switch {
		case !validIdent(m.Name):
			bad("interface %s: method name %q is not an identifier", i.Name, m.Name)
		case seen[m.Name]:
			bad("interface %s: method %q declared twice", i.Name, m.Name)
		}
		seen[m.Name] = true
		if strings.TrimSpace(m.Description) == "" {
			bad("%s: no description", what)
		}
		checkArgs(what+" (in)", m.In)
		checkArgs(what+" (out)", m.Out)
	}
	seen = map[string]bool{}
	for _, e := range i.Events {
		what := fmt.Sprintf("event %s.%s", i.Name, e.Name)
		switch {
		case !validIdent(e.Name):
			bad("interface %s: event name %q is not an identifier", i.Name, e.Name)
		case seen[e.Name]:
			bad("interface %s: event %q declared twice", i.Name, e.Name)
		}
		seen[e.Name] = true
		if strings.TrimSpace(e.Description) == "" {
			bad("%s: no description", what)
		}
		checkArgs(what, e.Args)
	}
	if len(errs) == 0 {
		return nil
	}
	return &DeclarationError{Interface: i.Name, Errs: errs}
}

// Method returns the method named name.
func (i Interface) Method(name string) (Method, bool) {
	for _, m := range i.Methods {
		if m.Name == name {
			return m, true
		}
	}
	return Method{}, false
}

// Event returns the event named name.
func (i Interface) Event(name string) (Event, bool) {
	for _, e := range i.Events {
		if e.Name == name {
			return e, true
		}
	}
	return Event{}, false
}

// clone returns a deep copy, so that a registered declaration cannot be
// changed behind the node's back.
func (i Interface) clone() Interface {
	c := i
	c.Methods = make([]Method, len(i.Methods))
	for k, m := range i.Methods {
		m.In = append([]Argument(nil), m.In...)
		m.Out = append([]Argument(nil), m.Out...)
		c.Methods[k] = m
	}
	c.Events = make([]Event, len(i.Events))
	for k, e := range i.Events {
		e.Args = append([]Argument(nil), e.Args...)
		c.Events[k] = e
	}
	return c
}

// DeclarationError lists what is wrong with an interface declaration.
type DeclarationError struct {
	Interface string
	Errs      []error
}

func (e *DeclarationError) Error() string {
	var b strings.Builder
	b.WriteString("rpc: invalid interface declaration")
	for i, err := range e.Errs {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns the individual problems.
func (e *DeclarationError) Unwrap() []error { return e.Errs }

// ValidInterfaceName reports whether s is a valid interface name: one or
// more identifiers separated by dots.
func ValidInterfaceName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if !validIdent(part) {
			return false
		}
	}
	return true
}

// validIdent reports whether s is an identifier: a letter or underscore,
// then letters, digits and underscores.
func validIdent(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || unicode.IsLetter(r):
		case i > 0 && unicode.IsDigit(r):
		default:
			return false
		}
	}
	return true
}

// ValidPath reports whether s is a valid path: "/", or "/" followed by
// segments separated by single slashes, without a trailing slash. A
// segment is printable UTF-8 without spaces.
func ValidPath(s string) bool {
	if s == "/" {
		return true
	}
	if len(s) < 2 || len(s) > 1024 || s[0] != '/' || s[len(s)-1] == '/' || !utf8.ValidString(s) {
		return false
	}
	for seg := range strings.SplitSeq(s[1:], "/") {
		if seg == "" {
			return false
		}
		for _, r := range seg {
			if !unicode.IsPrint(r) || unicode.IsSpace(r) {
				return false
			}
		}
	}
	return true
}

// checkArgs checks args against the declared arguments: each declared one
// present with a value of its type, nothing else.
func checkArgs(decl []Argument, args Args) error {
	var errs []string
	for _, a := range decl {
		v, ok := args[a.Name]
		if !ok {
			errs = append(errs, fmt.Sprintf("missing argument %q", a.Name))
			continue
		}
		if !typeMatches(a.Type, v) {
			errs = append(errs, fmt.Sprintf("argument %q: %s is not of type %s", a.Name, describeValue(v), a.Type))
		}
	}
	for name := range args {
		if !declared(decl, name) {
			errs = append(errs, fmt.Sprintf("unknown argument %q", name))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	slices.Sort(errs)
	return errors.New(strings.Join(errs, "; "))
}

func declared(decl []Argument, name string) bool {
	for _, a := range decl {
		if a.Name == name {
			return true
		}
	}
	return false
}
