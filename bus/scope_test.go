package bus_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/slc-go/slc/bus"
)

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in       string
		want     string // "" when invalid
		reserved bool
	}{
		{in: "/", want: "/"},
		{in: "/a/", want: "/a/"},
		{in: "/a/b/", want: "/a/b/"},
		{in: "/a/b", want: "/a/b/"}, // the final '/' is added
		{in: "/robot/arm/joint1/", want: "/robot/arm/joint1/"},
		{in: "/A-z_0-9/", want: "/A-z_0-9/"},
		{in: "/-/_/", want: "/-/_/"},
		{in: "/__slc/", want: "/__slc/", reserved: true},
		{in: "/__slc/join/", want: "/__slc/join/", reserved: true},
		{in: "/__slc", want: "/__slc/", reserved: true},
		{in: "/__slcx/", want: "/__slcx/"}, // not the reserved scope
		{in: "/x/__slc/", want: "/x/__slc/"},
		{in: ""},
		{in: "a/b/"},
		{in: "a"},
		{in: "//"},
		{in: "/a//b/"},
		{in: "//a/"},
		{in: "/a/b//"},
		{in: "/a b/"},
		{in: "/a.b/"},
		{in: "/a/./"},
		{in: "/../"},
		{in: "/ä/"},
		{in: "/a\x00/"},
		{in: "/a\\b/"},
		{in: " /a/"},
	} {
		sc, err := bus.ParseScope(tc.in)
		if tc.want == "" {
			if !errors.Is(err, bus.ErrInvalidScope) {
				t.Errorf("ParseScope(%q) = %v, %v; want ErrInvalidScope", tc.in, sc, err)
			}
			continue
		}
		if err != nil || sc.String() != tc.want || sc.IsReserved() != tc.reserved {
			t.Errorf("ParseScope(%q) = %v (reserved %v), %v; want %s (reserved %v)",
				tc.in, sc, sc.IsReserved(), err, tc.want, tc.reserved)
		}
	}
}

// TestScopeMatching is the table of what a listener receives.
func TestScopeMatching(t *testing.T) {
	for _, tc := range []struct {
		listener, event string
		want            bool
	}{
		{"/", "/", true},
		{"/", "/a/", true},
		{"/", "/a/b/c/", true},
		{"/a/", "/a/", true},
		{"/a/", "/a/b/", true},
		{"/a/", "/a/b/c/d/", true},
		{"/robot/", "/robot/arm/joint1/", true},
		{"/a/b/", "/a/", false},   // a parent
		{"/a/b/", "/", false},     // the root
		{"/a/b/", "/a/c/", false}, // a sibling
		{"/a/b/", "/a/bc/", false},
		{"/a/", "/ab/", false}, // a name prefix is not a scope prefix
		{"/ab/", "/a/", false},
		{"/a/", "/b/a/", false},
		{"/A/", "/a/", false}, // case matters
		// The reserved scope reaches only listeners inside it.
		{"/", "/__slc/", false},
		{"/", "/__slc/join/", false},
		{"/__slc/", "/__slc/", true},
		{"/__slc/", "/__slc/members/", true},
		{"/__slc/join/", "/__slc/members/", false},
		{"/", "/__slcx/", true},
		{"/x/", "/x/__slc/", true},
	} {
		l, e := bus.MustScope(tc.listener), bus.MustScope(tc.event)
		if got := l.Receives(e); got != tc.want {
			t.Errorf("listener %s receives %s: %v, want %v", l, e, got, tc.want)
		}
		if sub := e.IsSubScopeOf(l); !sub && tc.want {
			t.Errorf("%s receives %s but it is not a subscope", l, e)
		}
	}
}

func TestScopeTree(t *testing.T) {
	sc := bus.MustScope("/robot/arm/joint1/")
	if got := sc.Components(); !slices.Equal(got, []string{"robot", "arm", "joint1"}) {
		t.Errorf("components %q", got)
	}
	if got := bus.RootScope.Components(); got != nil {
		t.Errorf("root components %q", got)
	}
	for s, parent := range map[string]string{"/robot/arm/joint1/": "/robot/arm/", "/robot/": "/", "/": "/"} {
		if got := bus.MustScope(s).Parent().String(); got != parent {
			t.Errorf("parent of %s = %s, want %s", s, got, parent)
		}
	}
	if got, err := bus.MustScope("/robot/").Append("arm/joint1"); err != nil || got.String() != "/robot/arm/joint1/" {
		t.Errorf("append: %v, %v", got, err)
	}
	if _, err := bus.MustScope("/robot/").Append("a b"); !errors.Is(err, bus.ErrInvalidScope) {
		t.Errorf("append of an invalid component: %v", err)
	}
	var zero bus.Scope
	if !zero.IsRoot() || zero.String() != "/" || zero != bus.RootScope {
		t.Errorf("the zero scope is %q", zero)
	}
	for _, c := range []string{"a", "A-9_"} {
		if !bus.ValidComponent(c) {
			t.Errorf("%q is a valid component", c)
		}
	}
	for _, c := range []string{"", "a/b", "a.b", "é"} {
		if bus.ValidComponent(c) {
			t.Errorf("%q is not a valid component", c)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MustScope of an invalid scope did not panic")
		}
	}()
	bus.MustScope("no-slash")
}
