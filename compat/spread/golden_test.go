package spread

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// h decodes hex with spaces.
func h(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// name32 is a 32-byte NUL-padded name field.
func name32(s string) []byte {
	b := make([]byte, 32)
	copy(b, s)
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

const me = "#alice#d1"

// Golden client-to-daemon bytes, written from the protocol: the header's
// int32s are little-endian, and type and hint carry 0x80000080.
var goldenOut = []struct {
	name string
	got  func() []byte
	want []byte
}{
	{"connect alice, membership", func() []byte { return AppendConnect(nil, "alice", true, 0) },
		h("04 00 00 01 05 616c696365")},
	{"connect, no membership, priority 1", func() []byte { return AppendConnect(nil, "b", false, 1) },
		h("04 00 00 10 01 62")},
	{"connect, daemon names", func() []byte { return AppendConnect(nil, "", true, 0) },
		h("04 00 00 01 00")},
	{"auth choice NULL", func() []byte { return AppendAuthChoice(nil) },
		cat([]byte("NULL"), make([]byte, 86))},
	{"join chat", func() []byte {
		return AppendMessage(nil, Header{Type: typeJoin, Sender: me}, []string{"chat"}, nil)
	}, cat(h("80 00 01 80"), name32(me), h("01000000 80000080 00000000"), name32("chat"))},
	{"leave chat", func() []byte {
		return AppendMessage(nil, Header{Type: typeLeave, Sender: me}, []string{"chat"}, nil)
	}, cat(h("80 00 02 80"), name32(me), h("01000000 80000080 00000000"), name32("chat"))},
	{"disconnect", func() []byte {
		return AppendMessage(nil, Header{Type: typeKill, Sender: me}, []string{me}, nil)
	}, cat(h("80 00 04 80"), name32(me), h("01000000 80000080 00000000"), name32(me))},
	{"agreed|self-discard, type 7", func() []byte {
		return AppendMessage(nil, Header{Type: uint32(Agreed | SelfDiscard), Sender: me, Hint: 7 << 8}, []string{"chat"}, []byte("hi"))
	}, cat(h("d0 00 00 80"), name32(me), h("01000000 80070080 02000000"), name32("chat"), []byte("hi"))},
	{"safe to two groups, type -1", func() []byte {
		return AppendMessage(nil, Header{Type: uint32(Safe), Sender: me, Hint: 0xffff << 8}, []string{"a", "b"}, []byte{0})
	}, cat(h("a0 00 00 80"), name32(me), h("02000000 80ffff80 01000000"), name32("a"), name32("b"), []byte{0})},
}

func TestGoldenClientToDaemon(t *testing.T) {
	for i, g := range goldenOut {
		if got := g.got(); !bytes.Equal(got, g.want) {
			t.Errorf("%d. %s =\n% x\nwant\n% x", i, g.name, got, g.want)
		}
	}
	// Every service level's type word.
	for i, svc := range []Service{Unreliable, Reliable, FIFO, Causal, Agreed, Safe} {
		b := AppendMessage(nil, Header{Type: uint32(svc), Sender: me}, []string{"g"}, nil)
		if want := uint32(svc) | 0x80000080; binary.LittleEndian.Uint32(b) != want {
			t.Errorf("%d. %v: type % x; want %#08x", i, svc, b[:4], want)
		}
	}
}

// Golden daemon-to-client messages and what they decode to.
var goldenIn = []struct {
	name string
	in   []byte
	want Delivery
}{
	{"regular, little-endian", cat(h("90 00 00 80"), name32("#bob#d1"), h("01000000 80070080 02000000"), name32("chat"), []byte("hi")),
		&Message{Sender: "#bob#d1", Groups: []string{"chat"}, Service: Agreed, MsgType: 7, Body: []byte("hi"), Raw: []byte("hi")}},
	{"regular, big-endian", cat(h("00 00 00 04"), name32("#bob#d1"), h("00000002 0000ff00 00000001"), name32("a"), name32("b"), []byte("x")),
		&Message{Sender: "#bob#d1", Groups: []string{"a", "b"}, Service: FIFO, MsgType: 255, Body: []byte("x"), Raw: []byte("x")}},
	{"regular, negative type, self-discard", cat(h("e0 00 00 80"), name32("#bob#d1"), h("01000000 80feff80 00000000"), name32("chat")),
		&Message{Sender: "#bob#d1", Groups: []string{"chat"}, Service: Safe | SelfDiscard, MsgType: -2, Body: []byte{}, Raw: []byte{}}},
	{"rejected", cat(h("80 00 40 80"), name32(me), h("01000000 80000080 01000000"), h("82 00 00 80"), name32("chat"), []byte("z")),
		&Message{Sender: me, Groups: []string{"chat"}, Service: Reliable, Body: []byte("z"), Raw: []byte("z"), Rejected: true}},
	{"join", cat(h("80 11 00 80"), name32("chat"), h("02000000 80010080 38000000"), name32(me), name32("#bob#d1"),
		h("01000000 02000000 03000000  01000000 00000000  01000000"), name32("#bob#d1")),
		&Membership{Group: "chat", ViewID: ViewID{1, 2, 3}, Members: []string{me, "#bob#d1"}, Joined: []string{"#bob#d1"},
			Reason: Join, Index: 0, VSSets: [][]string{{"#bob#d1"}}, Local: 0}},
	{"leave, big-endian", cat(h("00 00 12 00"), name32("chat"), h("00000001 00000000 00000038"), name32(me),
		h("00000001 00000002 00000004  00000001 00000000  00000001"), name32("#bob#d1")),
		&Membership{Group: "chat", ViewID: ViewID{1, 2, 4}, Members: []string{me}, Left: []string{"#bob#d1"},
			Reason: Leave, Index: 0, VSSets: [][]string{{"#bob#d1"}}, Local: 0}},
	{"disconnect", cat(h("80 14 00 80"), name32("chat"), h("01000000 80000080 38000000"), name32(me),
		h("01000000 02000000 05000000  01000000 00000000  01000000"), name32("#bob#d1")),
		&Membership{Group: "chat", ViewID: ViewID{1, 2, 5}, Members: []string{me}, Left: []string{"#bob#d1"},
			Reason: Disconnect, Index: 0, VSSets: [][]string{{"#bob#d1"}}, Local: 0}},
	{"network, two VS sets, local second", cat(h("80 18 00 80"), name32("chat"), h("02000000 80000080 5c000000"), name32(me), name32("#c#d2"),
		h("07000000 08000000 00000000  02000000 24000000  01000000"), name32("#c#d2"), h("01000000"), name32(me)),
		&Membership{Group: "chat", ViewID: ViewID{7, 8, 0}, Members: []string{me, "#c#d2"},
			Reason: Network, Index: 0, VSSets: [][]string{{"#c#d2"}, {me}}, Local: 1}},
	{"transitional", cat(h("80 20 00 80"), name32("chat"), h("00000000 80000080 0c000000"), h("01000000 02000000 05000000")),
		&Membership{Group: "chat", ViewID: ViewID{1, 2, 5}, Transitional: true, Index: -1, Local: -1}},
	{"self-leave", cat(h("80 02 00 80"), name32("chat"), h("00000000 80000080 00000000")),
		&Membership{Group: "chat", Reason: Leave, Index: -1, Local: -1}},
}

func TestGoldenDaemonToClient(t *testing.T) {
	for i, g := range goldenIn {
		m, err := ReadMessage(bytes.NewReader(g.in), Limits{})
		if err != nil {
			t.Fatalf("%d. %s: ReadMessage: %v", i, g.name, err)
		}
		d, err := m.Decode(me)
		if err != nil {
			t.Fatalf("%d. %s: Decode: %v", i, g.name, err)
		}
		if !reflect.DeepEqual(d, g.want) {
			t.Errorf("%d. %s: got\n%#v\nwant\n%#v", i, g.name, d, g.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	hdr := func(typ, groups, hint, dlen string) []byte {
		return cat(h(typ), name32("chat"), h(groups+hint+dlen))
	}
	tests := []struct {
		name string
		in   []byte
		lim  Limits
	}{
		{"negative groups", hdr("90000080", "ffffffff", "80000080", "00000000"), Limits{}},
		{"too many groups", hdr("90000080", "05000000", "80000080", "00000000"), Limits{MaxGroups: 4}},
		{"negative length", hdr("90000080", "00000000", "80000080", "ffffffff"), Limits{}},
		{"too long", hdr("90000080", "00000000", "80000080", "11000000"), Limits{MaxMessage: 16}},
		{"neither kind", hdr("80000080", "00000000", "80000080", "00000000"), Limits{}},
		{"short membership", cat(hdr("80110080", "00000000", "80000080", "04000000"), h("00000000")), Limits{}},
		{"VS sets past the data", cat(hdr("80110080", "00000000", "80000080", "18000000"), h("000000000000000000000000 01000000 00000000 05000000")), Limits{}},
		{"too many VS sets", cat(hdr("80110080", "00000000", "80000080", "14000000"), h("000000000000000000000000 ffffffff 00000000")), Limits{}},
		{"bad local offset", cat(hdr("80110080", "00000000", "80000080", "18000000"), h("000000000000000000000000 01000000 01000000 00000000")), Limits{}},
		{"membership without reason", hdr("80080080", "00000000", "80000080", "00000000"), Limits{}},
	}
	for i, tt := range tests {
		m, err := ReadMessage(bytes.NewReader(tt.in), tt.lim)
		if err == nil {
			_, err = m.Decode(me)
		}
		if !errors.Is(err, ErrProtocol) {
			t.Errorf("%d. %s: %v; want ErrProtocol", i, tt.name, err)
		}
	}
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"", "alice", "0123456789"} {
		if !ValidPrivateName(ok) {
			t.Errorf("ValidPrivateName(%q) = false", ok)
		}
	}
	for _, bad := range []string{"01234567890", "a#b", "a b", "é"} {
		if ValidPrivateName(bad) {
			t.Errorf("ValidPrivateName(%q) = true", bad)
		}
	}
	if !ValidGroupName(strings.Repeat("g", 31)) || ValidGroupName(strings.Repeat("g", 32)) || ValidGroupName("") || ValidGroupName("a b") {
		t.Error("ValidGroupName's bounds are wrong")
	}
}

func TestService(t *testing.T) {
	for _, s := range []string{"unreliable", "reliable", "fifo", "causal", "agreed", "safe", "agreed|self-discard"} {
		svc, err := ParseService(s)
		if err != nil || svc.String() != s {
			t.Errorf("ParseService(%q) = %v, %v", s, svc, err)
		}
	}
	for _, s := range []string{"", "fifo|safe", "self-discard", "bogus"} {
		if _, err := ParseService(s); err == nil {
			t.Errorf("ParseService(%q) succeeded", s)
		} else if msg := err.Error(); !strings.HasPrefix(msg, "spread: ") || strings.Contains(msg, "group") {
			t.Errorf("ParseService(%q): error %q does not speak for this package", s, msg)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	err := error(&Error{Code: RejectNotUnique})
	if !errors.Is(err, &Error{Code: RejectNotUnique}) || errors.Is(err, &Error{Code: RejectAuth}) {
		t.Error("Error.Is does not match codes")
	}
	if !strings.Contains(err.Error(), "REJECT_NOT_UNIQUE") {
		t.Errorf("Error() = %q", err)
	}
}
