package bus

import (
	"errors"
	"fmt"
	"strings"
)

// ReservedScope is the scope of the bus's own traffic. Informers,
// listeners and servers cannot use it or its subscopes, and listeners
// on "/" do not receive it.
const ReservedScope = "/__slc/"

// ErrInvalidScope reports a scope that is not of the form /a/b/.
var ErrInvalidScope = errors.New("bus: invalid scope")

// ErrReservedScope reports a scope under /__slc/, which only the bus uses.
var ErrReservedScope = errors.New("bus: scope is reserved for the bus")

// Scope is a validated scope: "/" or "/a/b/", each component made of
// letters, digits, '-' and '_'. The zero Scope is the root, "/".
//
// Scopes form a tree: /robot/arm/ is a subscope of /robot/, which is a
// subscope of /. A listener receives the events of its scope and of every
// subscope.
type Scope struct {
	s string // always starts and ends with '/'; "" means "/"
}

// RootScope is "/".
var RootScope = Scope{}

// ParseScope checks s and returns it as a Scope. A missing final '/' is
// added ("/a/b" is "/a/b/"); anything else that is not /a/b/ syntax is
// rejected with an error wrapping ErrInvalidScope. Reserved scopes parse:
// Informers and listeners reject them.
func ParseScope(s string) (Scope, error) {
	if s == "" {
		return Scope{}, fmt.Errorf("%w: empty (the root scope is \"/\")", ErrInvalidScope)
	}
	if s[0] != '/' {
		return Scope{}, fmt.Errorf("%w %q: must start with '/'", ErrInvalidScope, s)
	}
	if s == "/" {
		return Scope{}, nil
	}
	if s[len(s)-1] != '/' {
		s += "/"
	}
	start := 1
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/':
			if i == start {
				return Scope{}, fmt.Errorf("%w %q: empty component at offset %d", ErrInvalidScope, s, i)
			}
			start = i + 1
		case validComponentByte(c):
		default:
			return Scope{}, fmt.Errorf("%w %q: character %q at offset %d (components use letters, digits, '-' and '_')",
				ErrInvalidScope, s, c, i)
		}
	}
	return Scope{s: s}, nil
}

// MustScope is ParseScope for constants: it panics on an invalid scope.
func MustScope(s string) Scope {
	sc, err := ParseScope(s)
	if err != nil {
		panic(err)
	}
	return sc
}

func validComponentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// ValidComponent reports whether s can be one component of a scope.
func ValidComponent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !validComponentByte(s[i]) {
			return false
		}
	}
	return true
}

// String returns the scope in /a/b/ form.
func (s Scope) String() string {
	if s.s == "" {
		return "/"
	}
	return s.s
}

// IsRoot reports whether s is "/".
func (s Scope) IsRoot() bool { return s.s == "" }

// Components returns the components of s: none for the root.
func (s Scope) Components() []string {
	if s.s == "" {
		return nil
	}
	return strings.Split(s.s[1:len(s.s)-1], "/")
}

// Append returns s with the components of sub ("b/c" or "/b/c/") added.
func (s Scope) Append(sub string) (Scope, error) {
	sub = strings.Trim(sub, "/")
	if sub == "" {
		return s, nil
	}
	return ParseScope(s.String() + sub + "/")
}

// Parent returns the scope above s; the root is its own parent.
func (s Scope) Parent() Scope {
	if s.s == "" {
		return s
	}
	i := strings.LastIndexByte(s.s[:len(s.s)-1], '/')
	if i == 0 {
		return Scope{}
	}
	return Scope{s: s.s[:i+1]}
}

// IsSubScopeOf reports whether s is other or lies below it: /a/b/ is a
// subscope of /a/b/, /a/ and /. It is a statement about names only; see
// Receives for what a listener gets.
func (s Scope) IsSubScopeOf(other Scope) bool {
	return strings.HasPrefix(s.String(), other.String())
}

// IsReserved reports whether s is /__slc/ or below it.
func (s Scope) IsReserved() bool { return strings.HasPrefix(s.s, ReservedScope) }

// Receives reports whether a listener on s receives an event published on
// event: event is s or a subscope of it, and the bus's reserved scope is
// received only by listeners inside it.
func (s Scope) Receives(event Scope) bool { return matches(s.String(), event.String()) }

// matches is Receives on scope strings in /a/b/ form.
func matches(listener, event string) bool {
	if !strings.HasPrefix(event, listener) {
		return false
	}
	return !strings.HasPrefix(event, ReservedScope) || strings.HasPrefix(listener, ReservedScope)
}

// parseUserScope parses a scope given to an informer, listener or server.
func parseUserScope(s string) (Scope, error) {
	sc, err := ParseScope(s)
	if err != nil {
		return Scope{}, err
	}
	if sc.IsReserved() {
		return Scope{}, fmt.Errorf("%w: %s", ErrReservedScope, sc)
	}
	return sc, nil
}
