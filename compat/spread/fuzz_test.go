package spread

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// FuzzReadMessage: no input panics the decoder; errors are ErrProtocol
// or a short stream; regular messages re-encode to what was read.
func FuzzReadMessage(f *testing.F) {
	for _, g := range goldenIn {
		f.Add(g.in)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			m, err := ReadMessage(r, Limits{MaxMessage: 1 << 16, MaxGroups: 64})
			if err != nil {
				if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrProtocol) {
					return
				}
				t.Fatalf("unexpected error %v", err)
			}
			d, err := m.Decode(me)
			if err != nil {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("Decode error %v is not ErrProtocol", err)
				}
				continue
			}
			if msg, ok := d.(*Message); ok && !msg.Rejected {
				// Re-encoded little-endian, it reads back the same.
				enc := AppendMessage(nil, m.Header, msg.Groups, msg.Body)
				m2, err := ReadMessage(bytes.NewReader(enc), Limits{MaxMessage: 1 << 16, MaxGroups: 64})
				if err != nil {
					t.Fatalf("re-encoded message does not read: %v", err)
				}
				d2, err := m2.Decode(me)
				if err != nil || !reflect.DeepEqual(d2, d) {
					t.Fatalf("round trip: %#v, %v; want %#v", d2, err, d)
				}
			}
		}
	})
}

// FuzzHeader: a header written by AppendHeader parses back.
func FuzzHeader(f *testing.F) {
	f.Add(uint32(0x10), "#a#b", int32(1), uint32(7<<8), int32(2))
	f.Fuzz(func(t *testing.T, typ uint32, sender string, groups int32, hint uint32, dlen int32) {
		in := Header{Type: typ &^ endianFlag, Sender: sender, NumGroups: groups, Hint: hint &^ endianFlag, DataLen: dlen}
		got, _, err := ParseHeader(AppendHeader(nil, &in))
		if err != nil {
			t.Fatal(err)
		}
		want := in
		want.Sender = cName(appendName(nil, sender))
		if got != want {
			t.Fatalf("ParseHeader(AppendHeader(%+v)) = %+v", want, got)
		}
	})
}
