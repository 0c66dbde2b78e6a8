package rsb

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzNotification: Unmarshal never panics; what it accepts re-encodes
// to bytes that decode to the same notification.
func FuzzNotification(f *testing.F) {
	for _, g := range goldenNotifications {
		f.Add(g.n.Marshal())
	}
	f.Add([]byte{})
	f.Add([]byte{0xe2, 0x06, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		var n Notification
		if err := n.Unmarshal(b); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		enc := n.Marshal()
		var m Notification
		if err := m.Unmarshal(enc); err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if !bytes.Equal(m.Marshal(), enc) {
			t.Fatalf("round trip differs")
		}
	})
}

// FuzzReadFrame: frames never panic the reader, lengths over the limit
// are refused before allocating, and what is read is what was framed.
func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, &goldenNotifications[0].n))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			_, err := ReadNotification(r, 1<<16)
			if err == nil {
				continue
			}
			if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrMalformed) {
				return
			}
			t.Fatalf("unexpected error %v", err)
		}
	})
}
