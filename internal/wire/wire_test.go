package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Golden vectors for every frame type. spec_test.go ties docs/protocol.md to the encoders.
var golden = []struct {
	name string
	got  func() []byte
	want string
}{
	{"preamble plain", func() []byte { return AppendPreamble(nil, Preamble{Min: 1, Max: 1, Mode: ModePlain}) },
		"736c6300 01 01 00 00"},
	{"preamble noise", func() []byte { return AppendPreamble(nil, Preamble{Min: 1, Max: 3, Mode: ModeNoiseXX}) },
		"736c6300 01 03 01 00"},
	{"preamble noise aesgcm", func() []byte {
		return AppendPreamble(nil, Preamble{Min: 1, Max: 1, Mode: ModeNoisePSK, Flags: PreambleAESGCM})
	}, "736c6300 01 01 02 01"},
	{"header", func() []byte {
		return AppendHeader(nil, Header{Version: 1, Type: TypeData, Flags: FlagMore, Length: 0x010203})
	},
		"01 04 01 00 00010203"},
	{"data", func() []byte { return AppendData(nil, 1, 0, 7, 1, 0, "demo.Reading", []byte{0x93, 0x01, 0x02, 0x03}) },
		"01 04 00 00 0000001b" + "0000000000000007 01 00 0c" + hex.EncodeToString([]byte("demo.Reading")) + "93010203"},
	{"data raw chunk", func() []byte { return AppendData(nil, 1, FlagMore, 0x0102030405060708, 0, 2, "", []byte("ab")) },
		"01 04 01 00 0000000d" + "0102030405060708 00 02 00" + "6162"},
	{"ack", func() []byte { return AppendAck(nil, 1, 1000) },
		"01 05 00 00 00000008 00000000000003e8"},
	{"ping", func() []byte { return AppendPing(nil, 1, false, 42) },
		"01 06 00 00 00000008 000000000000002a"},
	{"pong", func() []byte { return AppendPing(nil, 1, true, 42) },
		"01 07 00 00 00000008 000000000000002a"},
	{"resume", func() []byte { return AppendResume(nil, 1, Resume{Instance: 0xabcdef, Delivered: 99}) },
		"01 02 00 00 00000020 0000000000abcdef 0000000000000063 0000000000000000 0000000000000000"},
	{"resume partial", func() []byte {
		return AppendResume(nil, 1, Resume{Instance: 0xabcdef, Delivered: 99, Partial: 101, Chunks: 3})
	}, "01 02 00 00 00000020 0000000000abcdef 0000000000000063 0000000000000065 0000000000000003"},
	{"progress", func() []byte { return AppendProgress(nil, 1, Progress{Seq: 101, Chunks: 3}) },
		"01 09 00 00 00000010 0000000000000065 0000000000000003"},
	{"reject", func() []byte { return AppendClose(nil, 1, TypeReject, Close{Code: CodeNameInUse, Reason: "busy"}) },
		"01 03 00 00 00000013 82 a4636f6465 09 a6726561736f6e a462757379"},
	{"goodbye", func() []byte { return AppendClose(nil, 1, TypeGoodbye, Close{}) },
		"01 08 00 00 0000000f 82 a4636f6465 00 a6726561736f6e a0"},
	{"hello", func() []byte {
		return AppendHello(nil, 1, &Hello{
			Name: "a", Instance: 0x1234,
			Serializers: []CodecEntry{{0, "raw", 1}, {1, "msgpack", 1}},
			Compressors: []CodecEntry{{0, "none", 1}},
			MaxFrame:    1 << 20, MaxMessage: 1 << 30, HeartbeatMS: 1000,
		})
	}, "01 01 00 00 00000055" +
		"87" +
		"a46e616d65 a161" +
		"a4696e7374 cd1234" +
		"a3736572 92 9300a3726177 01 9301a76d73677061636b 01" +
		"a4636f6d70 91 9300a46e6f6e65 01" +
		"a86d61786672616d65 ce00100000" +
		"a66d61786d7367 ce40000000" +
		"a26862 cd03e8"},
}

func TestGolden(t *testing.T) {
	for i, g := range golden {
		got := g.got()
		want := unhex(t, g.want)
		if !bytes.Equal(got, want) {
			t.Errorf("%d. %s = %x; want %x", i, g.name, got, want)
		}
	}
}

func TestGoldenDecodes(t *testing.T) {
	frames := map[string][]byte{}
	for _, g := range golden {
		frames[g.name] = unhex(t, g.want)
	}
	p, err := ParsePreamble(frames["preamble noise"])
	if err != nil || p != (Preamble{Min: 1, Max: 3, Mode: ModeNoiseXX}) {
		t.Fatalf("ParsePreamble = %+v, %v", p, err)
	}
	p, err = ParsePreamble(frames["preamble noise aesgcm"])
	if err != nil || p != (Preamble{Min: 1, Max: 1, Mode: ModeNoisePSK, Flags: PreambleAESGCM}) {
		t.Fatalf("ParsePreamble = %+v, %v", p, err)
	}
	payload := func(name string) []byte {
		b := frames[name]
		h, err := ParseHeader(b, 1, MaxFrameLimit)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if int(h.Length) != len(b)-HeaderLen {
			t.Fatalf("%s: header length %d, payload %d", name, h.Length, len(b)-HeaderLen)
		}
		return b[HeaderLen:]
	}
	d, err := ParseData(payload("data"))
	if err != nil || d.Seq != 7 || d.Serializer != 1 || d.Compressor != 0 || string(d.Type) != "demo.Reading" || !bytes.Equal(d.Body, []byte{0x93, 1, 2, 3}) {
		t.Errorf("ParseData = %+v, %v", d, err)
	}
	if a, err := ParseAck(payload("ack")); a != 1000 || err != nil {
		t.Errorf("ParseAck = %d, %v", a, err)
	}
	if n, err := ParsePing(payload("pong")); n != 42 || err != nil {
		t.Errorf("ParsePing = %d, %v", n, err)
	}
	if r, err := ParseResume(payload("resume")); r != (Resume{Instance: 0xabcdef, Delivered: 99}) || err != nil {
		t.Errorf("ParseResume = %+v, %v", r, err)
	}
	if r, err := ParseResume(payload("resume partial")); r != (Resume{0xabcdef, 99, 101, 3}) || err != nil {
		t.Errorf("ParseResume(partial) = %+v, %v", r, err)
	}
	if p, err := ParseProgress(payload("progress")); p != (Progress{101, 3}) || err != nil {
		t.Errorf("ParseProgress = %+v, %v", p, err)
	}
	for i, bad := range []Resume{{Delivered: 5, Partial: 5, Chunks: 1}, {Partial: 7}, {Chunks: 2}} {
		if _, err := ParseResume(AppendResume(nil, 1, bad)[HeaderLen:]); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d. ParseResume(%+v) = %v; want malformed", i, bad, err)
		}
	}
	if c, err := ParseClose(payload("reject")); c != (Close{CodeNameInUse, "busy"}) || err != nil {
		t.Errorf("ParseClose = %+v, %v", c, err)
	}
	h, err := ParseHello(payload("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "a" || h.Instance != 0x1234 || len(h.Serializers) != 2 || h.Serializers[1] != (CodecEntry{1, "msgpack", 1}) ||
		h.MaxFrame != 1<<20 || h.MaxMessage != 1<<30 || h.HeartbeatMS != 1000 {
		t.Errorf("ParseHello = %+v", h)
	}
}

// The control bodies are standard msgpack: a general-purpose decoder reads them.
func TestControlBodiesAreStandardMsgpack(t *testing.T) {
	b := AppendHello(nil, 1, &Hello{Name: "node-a", Instance: 1 << 40, Serializers: []CodecEntry{{1, "msgpack", 1}},
		MaxFrame: 1 << 20, MaxMessage: 1 << 30, HeartbeatMS: 2000})
	var m map[string]any
	if err := msgpack.Unmarshal(b[HeaderLen:], &m); err != nil {
		t.Fatal(err)
	}
	if m["name"] != "node-a" || m["hb"] != uint16(2000) {
		t.Errorf("msgpack view of hello = %v", m)
	}
	// And a hello from a newer peer with extra keys of any shape is accepted.
	extra := map[string]any{
		"name": "x", "inst": uint64(9), "maxframe": uint32(1 << 20), "maxmsg": uint64(1 << 20), "hb": 500,
		"future": map[string]any{"nested": []any{1, "two", []byte{3}, 4.5, nil, true}},
	}
	p, err := msgpack.Marshal(extra)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHello(p)
	if err != nil || h.Name != "x" || h.Instance != 9 {
		t.Fatalf("ParseHello(extra keys) = %+v, %v", h, err)
	}
}

// TestPreambleFlags: byte 7 is the flags byte. The parser keeps it as
// sent, reserved bits included, and never refuses a preamble for it; the
// version and mode negotiation ignores it, so a peer that sends 0 (an
// older one, or one without a preference) and one that sets flags agree.
func TestPreambleFlags(t *testing.T) {
	for _, flags := range []uint8{0, PreambleAESGCM, 0xfe, 0xff} {
		b := AppendPreamble(nil, Preamble{Min: 1, Max: 1, Mode: ModeNoiseXX, Flags: flags})
		if len(b) != PreambleLen || b[7] != flags {
			t.Fatalf("flags %#x: encoded %x", flags, b)
		}
		p, err := ParsePreamble(b)
		if err != nil || p.Flags != flags {
			t.Fatalf("flags %#x: ParsePreamble = %+v, %v", flags, p, err)
		}
		old := Preamble{Min: 1, Max: 1, Mode: ModeNoiseXX}
		for _, pair := range [][2]Preamble{{p, old}, {old, p}, {p, p}} {
			if v, err := Negotiate(pair[0], pair[1]); v != 1 || err != nil {
				t.Errorf("Negotiate(%+v, %+v) = %d, %v; want 1", pair[0], pair[1], v, err)
			}
		}
	}
	// A mode mismatch is still one, whatever the flags.
	_, err := Negotiate(Preamble{1, 1, ModeNoiseXX, PreambleAESGCM}, Preamble{1, 1, ModePlain, 0})
	if pe, ok := AsProtocolError(err); !ok || pe.Code != CodeSecurityMismatch {
		t.Errorf("mode mismatch with flags: %v", err)
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		local, remote Preamble
		want          uint8
		code          Code
	}{
		{Preamble{1, 1, 0, 0}, Preamble{1, 1, 0, 0}, 1, 0},
		{Preamble{1, 3, 0, 0}, Preamble{2, 5, 0, 0}, 3, 0},
		{Preamble{1, 1, 0, 0}, Preamble{2, 2, 0, 0}, 0, CodeVersion},
		{Preamble{1, 1, ModePlain, 0}, Preamble{1, 1, ModeNoiseXX, 0}, 0, CodeSecurityMismatch},
		{Preamble{1, 1, ModeNoisePSK, 0}, Preamble{1, 1, ModeNoiseXX, 0}, 0, CodeSecurityMismatch},
	}
	for i, tt := range tests {
		v, err := Negotiate(tt.local, tt.remote)
		var code Code
		if pe, ok := AsProtocolError(err); ok {
			code = pe.Code
		}
		if v != tt.want || code != tt.code {
			t.Errorf("%d. Negotiate(%v, %v) = %d, %v; want %d, code %v", i, tt.local, tt.remote, v, err, tt.want, tt.code)
		}
	}
	_, err := Negotiate(Preamble{1, 1, ModePlain, 0}, Preamble{1, 1, ModeNoiseXX, 0})
	if !strings.Contains(err.Error(), "local side is plain, remote side is secure") {
		t.Errorf("mismatch error does not say why: %v", err)
	}
}

func TestParsePreambleErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"GET / HTTP/1.1", ErrBadMagic},
		{"slc\x00\x00\x01\x00\x00", ErrMalformed},
		{"slc\x00\x03\x01\x00\x00", ErrMalformed},
		{"slc", ErrMalformed},
	}
	for i, tt := range tests {
		_, err := ParsePreamble([]byte(tt.in))
		if !errors.Is(err, tt.want) {
			t.Errorf("%d. ParsePreamble(%q) = %v; want %v", i, tt.in, err, tt.want)
		}
	}
}

func TestParseHeaderErrors(t *testing.T) {
	tests := []struct {
		in   string
		max  uint32
		want error
	}{
		{"02 04 00 00 00000000", 100, ErrInvalidVersion},
		{"01 04 00 00 ffffffff", 1 << 20, ErrFrameTooLarge},
		{"01 04 00 00 00000065", 100, ErrFrameTooLarge},
		{"01 0a 00 00 00000000", 100, ErrUnknownFrame},
		{"01 7f 00 00 00000000", 100, ErrUnknownFrame},
		{"01 00 00 00 00000000", 100, ErrUnknownFrame},
		{"01 04 00", 100, ErrMalformed},
	}
	for i, tt := range tests {
		_, err := ParseHeader(unhex(t, tt.in), 1, tt.max)
		if !errors.Is(err, tt.want) {
			t.Errorf("%d. ParseHeader(%s) = %v; want %v", i, tt.in, err, tt.want)
		}
	}
	if _, err := ParseHeader(unhex(t, "01 80 00 00 00000004"), 1, 100); err != nil {
		t.Errorf("ignorable extension frame type refused: %v", err)
	}
}

func TestParseDataErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"00", ErrMalformed},
		{"0000000000000001 01 00 05 6162", ErrMalformed},
		{"0000000000000000 01 00 00", &ProtocolError{Code: CodeSequence}},
		{"0000000000000001 01 00 02 fffe", ErrMalformed},
	}
	for i, tt := range tests {
		_, err := ParseData(unhex(t, tt.in))
		if !errors.Is(err, tt.want) {
			t.Errorf("%d. ParseData(%s) = %v; want %v", i, tt.in, err, tt.want)
		}
	}
}

func TestHelloValidate(t *testing.T) {
	ok := Hello{Name: "n", Instance: 1, MaxFrame: MinFrameLimit, MaxMessage: 1, HeartbeatMS: 1}
	tests := []struct {
		mod  func(*Hello)
		good bool
	}{
		{func(*Hello) {}, true},
		{func(h *Hello) { h.Name = "" }, false},
		{func(h *Hello) { h.Name = " lead" }, false},
		{func(h *Hello) { h.Name = "ctl\x01" }, false},
		{func(h *Hello) { h.Name = strings.Repeat("x", 256) }, false},
		{func(h *Hello) { h.Name = "\xff" }, false},
		{func(h *Hello) { h.Name = "labor-kamera/2 µ" }, true},
		{func(h *Hello) { h.Instance = 0 }, false},
		{func(h *Hello) { h.MaxFrame = MinFrameLimit - 1 }, false},
		{func(h *Hello) { h.MaxFrame = MaxFrameLimit + 1 }, false},
		{func(h *Hello) { h.MaxMessage = 0 }, false},
		{func(h *Hello) { h.HeartbeatMS = 0 }, false},
	}
	for i, tt := range tests {
		h := ok
		tt.mod(&h)
		err := h.Validate()
		if (err == nil) != tt.good {
			t.Errorf("%d. Validate(%+v) = %v; want ok=%v", i, h, err, tt.good)
		}
		// Whatever validates must survive the round trip.
		if err == nil {
			p := AppendHello(nil, 1, &h)
			got, err := ParseHello(p[HeaderLen:])
			if err != nil || got.Name != h.Name {
				t.Errorf("%d. round trip = %+v, %v", i, got, err)
			}
		}
	}
}

func TestHostileBodies(t *testing.T) {
	tests := []struct {
		in       string
		closeBad bool // ParseClose must refuse it too (hello always must)
	}{
		{"", true},                            // empty
		{"81", true},                          // map with a missing key
		{"dfffffffff", true},                  // map claiming 4G entries
		{"81 a4 6e616d65 dbffffffff", true},   // string claiming 4 GiB
		{"81 a3 736572 ddffffffff", true},     // array claiming 4G entries
		{"81 a3 736572 91 92 00 a161", false}, // codec entry with 2 fields (an unknown key to close)
		{"81 a1 78 dc ffff", true},            // unknown key: array longer than the body
		{"81 a1 78 c1", true},                 // never-used code
		{"90", true},                          // not a map
		{"81 a4 636f6465 ce00010000", true},   // close code out of range
	}
	for i, tt := range tests {
		if _, err := ParseHello(unhex(t, tt.in)); err == nil {
			t.Errorf("%d. ParseHello(%s) accepted", i, tt.in)
		}
		if _, err := ParseClose(unhex(t, tt.in)); (err != nil) != tt.closeBad {
			t.Errorf("%d. ParseClose(%s) = %v; want error=%v", i, tt.in, err, tt.closeBad)
		}
	}
}

// frames builds a stream of n assorted frames and returns it with the
// payloads expected from it.
func frames(n int) ([]byte, [][]byte) {
	var stream []byte
	var want [][]byte
	for i := 0; i < n; i++ {
		start := len(stream)
		switch i % 4 {
		case 0:
			stream = AppendData(stream, 1, 0, uint64(i+1), 1, 0, "t", bytes.Repeat([]byte{byte(i)}, i*37%300))
		case 1:
			stream = AppendAck(stream, 1, uint64(i))
		case 2:
			stream = AppendData(stream, 1, FlagMore, uint64(i+1), 0, 0, "", bytes.Repeat([]byte{byte(i)}, 5000+i))
		case 3:
			stream = AppendPing(stream, 1, i%2 == 1, uint64(i))
		}
		want = append(want, stream[start+HeaderLen:])
	}
	return stream, want
}

func readAll(t *testing.T, fr *Reader) [][]byte {
	t.Helper()
	var got [][]byte
	for {
		for {
			_, p, ok, err := fr.Buffered()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, p)
			fr.Retain()
		}
		if err := fr.Fill(); err != nil {
			if err == io.EOF {
				return got
			}
			t.Fatal(err)
		}
	}
}

func TestReader(t *testing.T) {
	stream, want := frames(200)
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(stream) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
	}
	for name, mk := range readers {
		for _, size := range []int{64, 4096, 1 << 16} {
			fr := NewReader(mk(), size)
			fr.Version, fr.MaxPayload = 1, 1<<20
			got := readAll(t, fr)
			if len(got) != len(want) {
				t.Fatalf("%s/%d: %d frames, want %d", name, size, len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("%s/%d: frame %d differs", name, size, i)
				}
			}
		}
	}
}

// Payloads handed out before Retain must not be overwritten by later reads.
func TestReaderRetainKeepsBytes(t *testing.T) {
	var stream []byte
	for i := 0; i < 100; i++ {
		stream = AppendAck(stream, 1, uint64(i))
	}
	fr := NewReader(iotest.HalfReader(bytes.NewReader(stream)), 64)
	fr.Version = 1
	kept := readAll(t, fr)
	for i, p := range kept {
		if v, _ := ParseAck(p); v != uint64(i) {
			t.Fatalf("payload %d now reads %d: overwritten", i, v)
		}
	}
}

func TestReaderRefusesBeforeAllocating(t *testing.T) {
	// A header announcing 4 GiB: the reader must fail on the header alone.
	r := io.MultiReader(bytes.NewReader(unhex(t, "01 04 00 00 ffffffff")), iotest.ErrReader(errors.New("must not read on")))
	fr := NewReader(r, 64)
	fr.Version, fr.MaxPayload = 1, 1<<20
	_, _, err := fr.ReadFrame()
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("ReadFrame = %v; want ErrFrameTooLarge", err)
	}
}

func TestReaderTruncated(t *testing.T) {
	b := AppendData(nil, 1, 0, 1, 0, 0, "", make([]byte, 100))
	for _, cut := range []int{3, HeaderLen, HeaderLen + 50} {
		fr := NewReader(bytes.NewReader(b[:cut]), 64)
		fr.Version, fr.MaxPayload = 1, 1<<20
		_, _, err := fr.ReadFrame()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d: %v; want unexpected EOF", cut, err)
		}
	}
}

func FuzzReader(f *testing.F) {
	stream, _ := frames(12)
	f.Add(stream)
	f.Add(unhex(f, "01 04 00 00 ffffffff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := NewReader(bytes.NewReader(b), 128)
		fr.Version, fr.MaxPayload = 1, 1<<16
		for i := 0; i < 1000; i++ {
			h, p, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if int(h.Length) != len(p) {
				t.Fatalf("payload %d bytes, header says %d", len(p), h.Length)
			}
			switch h.Type {
			case TypeData:
				_, _ = ParseData(p)
			case TypeAck:
				_, _ = ParseAck(p)
			case TypeHello:
				_, _ = ParseHello(p)
			case TypeReject, TypeGoodbye:
				_, _ = ParseClose(p)
			case TypeResume:
				_, _ = ParseResume(p)
			case TypePing, TypePong:
				_, _ = ParsePing(p)
			case TypeProgress:
				_, _ = ParseProgress(p)
			}
		}
	})
}

// FuzzPreamble: any 8 bytes either fail to parse or parse into a
// preamble that encodes back to the same bytes, flags included.
func FuzzPreamble(f *testing.F) {
	f.Add([]byte("slc\x00\x01\x01\x00\x00"))
	f.Add([]byte("slc\x00\x01\x01\x01\x01"))
	f.Add([]byte("slc\x00\x01\x03\x02\xff"))
	f.Add([]byte("SSH-2.0-"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePreamble(b)
		if err != nil {
			if _, ok := AsProtocolError(err); !ok {
				t.Fatalf("not a protocol error: %v", err)
			}
			return
		}
		if got := AppendPreamble(nil, p); !bytes.Equal(got, b[:PreambleLen]) {
			t.Fatalf("%x parses to %+v, which encodes to %x", b[:PreambleLen], p, got)
		}
	})
}

func FuzzHello(f *testing.F) {
	for _, g := range golden {
		if g.name == "hello" {
			f.Add(g.got()[HeaderLen:])
		}
	}
	f.Add([]byte{0x81, 0xa1, 'x', 0xdc, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHello(b)
		if err != nil {
			return
		}
		// What parses re-encodes to something that parses the same.
		again, err := ParseHello(AppendHello(nil, 1, h)[HeaderLen:])
		if err != nil || again.Name != h.Name || again.Instance != h.Instance || len(again.Serializers) != len(h.Serializers) {
			t.Fatalf("round trip: %+v vs %+v (%v)", h, again, err)
		}
	})
}

func FuzzClose(f *testing.F) {
	f.Add(AppendClose(nil, 1, TypeGoodbye, Close{Code: 3, Reason: "why"})[HeaderLen:])
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseClose(b)
		if err != nil {
			return
		}
		again, err := ParseClose(AppendClose(nil, 1, TypeGoodbye, c)[HeaderLen:])
		if err != nil || again != c {
			t.Fatalf("round trip: %+v vs %+v (%v)", c, again, err)
		}
	})
}

func FuzzData(f *testing.F) {
	f.Add(AppendData(nil, 1, 0, 5, 1, 0, "x.Y", []byte{1, 2})[HeaderLen:])
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseData(b)
		if err != nil {
			return
		}
		again := AppendData(nil, 1, 0, d.Seq, d.Serializer, d.Compressor, string(d.Type), d.Body)
		if !bytes.Equal(again[HeaderLen:], b) {
			t.Fatalf("re-encoding differs: %x vs %x", again[HeaderLen:], b)
		}
	})
}

func BenchmarkAppendData64(b *testing.B) {
	b.ReportAllocs()
	body := make([]byte, 64)
	buf := make([]byte, 0, 4096)
	for i := 0; i < b.N; i++ {
		buf = AppendData(buf[:0], 1, 0, uint64(i+1), 1, 0, "bench.Msg", body)
	}
}

func BenchmarkReaderSmallFrames(b *testing.B) {
	var stream []byte
	for i := 0; i < 1000; i++ {
		stream = AppendData(stream, 1, 0, uint64(i+1), 1, 0, "bench.Msg", make([]byte, 64))
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	r := bytes.NewReader(stream)
	for i := 0; i < b.N; i++ {
		r.Reset(stream)
		fr := NewReader(r, 0)
		fr.Version, fr.MaxPayload = 1, 1<<20
		for {
			_, p, ok, err := fr.Buffered()
			if err != nil {
				b.Fatal(err)
			}
			if ok {
				if _, err := ParseData(p); err != nil {
					b.Fatal(err)
				}
				continue
			}
			if fr.Fill() != nil {
				break
			}
		}
	}
}

func TestCloseReasonTruncatedAtRuneBoundary(t *testing.T) {
	reason := strings.Repeat("x", MaxReason-1) + "é" // the é straddles the limit
	c, err := ParseClose(AppendClose(nil, 1, TypeGoodbye, Close{Code: CodeInternal, Reason: reason})[HeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	if c.Reason != strings.Repeat("x", MaxReason-1) {
		t.Fatalf("reason cut to %d bytes (%q...); want the %d x's", len(c.Reason), c.Reason[len(c.Reason)-3:], MaxReason-1)
	}
}

// chunkReader returns its chunks one Read at a time.
type chunkReader struct{ chunks [][]byte }

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if n == len(c.chunks[0]) {
		c.chunks = c.chunks[1:]
	} else {
		c.chunks[0] = c.chunks[0][n:]
	}
	return n, nil
}

// The buffer grows while reads fill it and shrinks back to minBuf once the
// connection carries only small frames, so an idle connection does not
// keep a bulk-sized buffer.
func TestReaderAdaptsBufferSize(t *testing.T) {
	var bulk []byte
	for len(bulk) < 1<<20 {
		bulk = AppendData(bulk, 1, 0, uint64(len(bulk)+1), 0, 0, "", make([]byte, 1000))
	}
	src := &chunkReader{chunks: [][]byte{bulk}}
	for i := 0; i < 40; i++ {
		src.chunks = append(src.chunks, AppendPing(nil, 1, false, uint64(i)))
	}
	fr := NewReader(src, 256<<10)
	fr.Version, fr.MaxPayload = 1, 1<<20
	if fr.cur != minBuf {
		t.Fatalf("starts with %d bytes; want %d", fr.cur, minBuf)
	}
	biggest := 0
	for {
		for {
			_, _, ok, err := fr.Buffered()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
		}
		biggest = max(biggest, len(fr.buf))
		if err := fr.Fill(); err != nil {
			break
		}
	}
	if biggest != 256<<10 {
		t.Fatalf("bulk reads grew the buffer to %d; want 256 KiB", biggest)
	}
	if len(fr.buf) > 2*minBuf {
		t.Fatalf("after the bulk, pings only: buffer still %d bytes", len(fr.buf))
	}
}
