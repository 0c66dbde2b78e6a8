package group

import (
	"testing"

	"github.com/slc-go/slc"
)

func TestService(t *testing.T) {
	tests := []struct {
		in    string
		want  Service
		valid bool
	}{
		{"agreed", Agreed, true},
		{"SAFE|self-discard", Safe | SelfDiscard, true},
		{"fifo", FIFO, true},
		{"unreliable", Unreliable, true},
		{"agreed|safe", 0, false},
		{"self-discard", 0, false},
		{"total", 0, false},
	}
	for i, tt := range tests {
		got, err := ParseService(tt.in)
		if (err == nil) != tt.valid || got != tt.want {
			t.Errorf("%d. ParseService(%q) = %v, %v; want %v (valid %v)", i, tt.in, got, err, tt.want, tt.valid)
		}
		if tt.valid && got.String() == "" {
			t.Errorf("%d. %v has no name", i, got)
		}
	}
	for _, s := range []Service{0, Agreed | Safe, Agreed | 0x100} {
		if s.Valid() {
			t.Errorf("Service(%#x).Valid() = true; want false", uint16(s))
		}
	}
	if s := (Safe | SelfDiscard).String(); s != "safe|self-discard" {
		t.Errorf("String() = %q; want %q", s, "safe|self-discard")
	}
}

func TestMembershipString(t *testing.T) {
	v := ViewID{Coordinator: "a", Config: 3, Seq: 2}
	tests := []struct {
		m    Membership
		want string
	}{
		{Membership{Group: "chat", ViewID: v, Members: []slc.PeerID{"a", "b"}, Joined: []slc.PeerID{"b"}, Reason: Join},
			"chat: [b] joined (join), members [a b], view a/3.2"},
		{Membership{Group: "chat", ViewID: v, Members: []slc.PeerID{"a"}, Left: []slc.PeerID{"b"}, Reason: Disconnect},
			"chat: [b] left (disconnect), members [a], view a/3.2"},
		{Membership{Group: "chat", ViewID: v, Members: []slc.PeerID{"a"}, Reason: Network},
			"chat: new view (network partition), members [a], view a/3.2"},
		{Membership{Group: "chat", ViewID: v, Members: []slc.PeerID{"a"}, Reason: Network, Transitional: true},
			"chat: transitional view (network partition), members [a]"},
	}
	for i, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("%d. String() = %q; want %q", i, got, tt.want)
		}
	}
}
