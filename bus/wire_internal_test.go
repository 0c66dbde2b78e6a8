package bus

import (
	"reflect"
	"testing"
	"time"
)

func sampleEvent() *outEvent {
	return &outEvent{
		seq: 42, reliable: true, scope: "/robot/arm/", schema: "int64", method: MethodRequest,
		create: time.Unix(0, 1_700_000_000_123_456_789),
		causes: []EventID{{Sender: "a", Instance: 1, Seq: 2}, {Sender: "b", Instance: 3, Seq: 4}},
		infos:  map[string]string{"k": "v", "empty": ""},
		times:  map[string]time.Time{"t": time.Unix(0, 5), "zero": {}},
		data:   []byte{1, 2, 3},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	send := time.Unix(0, 1_700_000_001_000_000_000)
	for _, e := range []*outEvent{sampleEvent(), {seq: 1, scope: "/", schema: "void"}} {
		b := appendEvent(nil, e, "node-1", 77, send)
		b = appendEvent(b, e, "node-1", 77, time.Time{})
		for i := range 2 {
			h, rest, err := nextRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			if string(h.sender) != "node-1" || h.instance != 77 || h.seq != e.seq || string(h.scope) != e.scope ||
				(h.flags&flagReliable != 0) != e.reliable {
				t.Fatalf("header %+v", h)
			}
			w, err := decodeRest(&h)
			if err != nil {
				t.Fatal(err)
			}
			wantSend := send
			if i == 1 {
				wantSend = time.Time{}
			}
			if string(w.schema) != e.schema || w.method != e.method || !w.create.Equal(e.create) || !w.send.Equal(wantSend) ||
				string(w.data) != string(e.data) || !reflect.DeepEqual(w.causes, nonNil(e.causes)) {
				t.Fatalf("decoded %+v from %+v", w, e)
			}
			if len(e.infos) > 0 && (!reflect.DeepEqual(w.infos, e.infos) || !w.times["t"].Equal(e.times["t"]) || !w.times["zero"].IsZero()) {
				t.Fatalf("infos %v times %v", w.infos, w.times)
			}
			b = rest
		}
		if len(b) != 0 {
			t.Fatalf("%d bytes left", len(b))
		}
	}
}

func nonNil(c []EventID) []EventID {
	if c == nil {
		return nil
	}
	return c
}

func TestRecordTruncated(t *testing.T) {
	b := appendEvent(nil, sampleEvent(), "n", 1, time.Now())
	for i := range len(b) {
		h, _, err := nextRecord(b[:i])
		if err == nil {
			if _, err := decodeRest(&h); err == nil {
				t.Fatalf("a record cut at %d of %d decoded", i, len(b))
			}
		}
	}
	// A length that claims more than there is.
	b[0] = 0x7f
	if _, _, err := nextRecord(b); err == nil {
		t.Error("an overlong record was accepted")
	}
}

// FuzzRecords feeds arbitrary batches to the decoder: it must never
// panic, and what it accepts must encode back to the same fields.
func FuzzRecords(f *testing.F) {
	f.Add(appendEvent(nil, sampleEvent(), "node", 1, time.Unix(1, 2)))
	f.Add(appendEvent(nil, &outEvent{seq: 1, scope: "/", schema: "void"}, "n", 1, time.Time{}))
	f.Add([]byte{0, 0, 0, 1, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			h, rest, err := nextRecord(b)
			if err != nil {
				return
			}
			if _, err := decodeRest(&h); err != nil {
				return
			}
			b = rest
		}
	})
}
