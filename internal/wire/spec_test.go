package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// protocolDoc is the specification whose examples the encoders must
// reproduce byte for byte.
const protocolDoc = "../../docs/protocol.md"

// The values the examples in docs/protocol.md state.
var (
	docInstA uint64 = 0x8a3f19c2d4e5b607 // node-a
	docInstB uint64 = 0x2b7e151628aed2a6 // node-b
	docNonce uint64 = 0x18b0471316c74d15 // a PING's clock, 1779000000123456789 ns

	// node-a's hello: default settings, the built-in codecs.
	docHelloA = Hello{
		Name:     "node-a",
		Instance: docInstA,
		Serializers: []CodecEntry{
			{ID: 0, Name: "raw", Version: 1},
			{ID: 1, Name: "msgpack", Version: 1},
			{ID: 2, Name: "json", Version: 1},
		},
		Compressors: []CodecEntry{
			{ID: 0, Name: "none", Version: 1},
			{ID: 1, Name: "s2", Version: 1},
			{ID: 2, Name: "zstd", Version: 1},
			{ID: 3, Name: "gzip", Version: 1},
		},
		MaxFrame:    16 << 20,
		MaxMessage:  256 << 20,
		HeartbeatMS: 1000,
	}

	// The body of the DATA example: the msgpack map {"sensor": "t1", "c": 21}.
	docReading = []byte{0x82, 0xa6, 's', 'e', 'n', 's', 'o', 'r', 0xa2, 't', '1', 0xa1, 'c', 0x15}

	docReject = Close{Code: CodeUnsupportedCodec, Reason: "remote cannot decompress zstd v1"}
)

// docExample is one named example of docs/protocol.md: encode produces the
// bytes for the values the document states, check decodes the document's
// bytes with the parsers and compares the values.
type docExample struct {
	encode func() []byte
	check  func(t *testing.T, b []byte)
}

var docExamples = map[string]docExample{
	"preamble": {
		func() []byte { return AppendPreamble(nil, Preamble{Min: 1, Max: 1, Mode: ModePlain}) },
		func(t *testing.T, b []byte) {
			p := docPreamble(t, b, Preamble{Min: 1, Max: 1, Mode: ModePlain})
			if v, err := Negotiate(p, p); v != 1 || err != nil {
				t.Errorf("Negotiate = %d, %v; want 1", v, err)
			}
		},
	},
	"preamble-secure": {
		func() []byte { return AppendPreamble(nil, Preamble{Min: 1, Max: 1, Mode: ModeNoiseXX}) },
		func(t *testing.T, b []byte) {
			p := docPreamble(t, b, Preamble{Min: 1, Max: 1, Mode: ModeNoiseXX})
			plain := Preamble{Min: 1, Max: 1, Mode: ModePlain}
			for _, pair := range [][2]Preamble{{plain, p}, {p, plain}} {
				_, err := Negotiate(pair[0], pair[1])
				if pe, ok := AsProtocolError(err); !ok || pe.Code != CodeSecurityMismatch {
					t.Errorf("Negotiate(%v, %v) = %v; want a security mode mismatch", pair[0], pair[1], err)
				}
			}
		},
	},
	"preamble-aesgcm": {
		func() []byte {
			return AppendPreamble(nil, Preamble{Min: 1, Max: 1, Mode: ModeNoiseXX, Flags: PreambleAESGCM})
		},
		func(t *testing.T, b []byte) {
			p := docPreamble(t, b, Preamble{Min: 1, Max: 1, Mode: ModeNoiseXX, Flags: PreambleAESGCM})
			// The flags do not take part in the version and mode
			// negotiation: this node and the one of preamble-secure agree.
			other := Preamble{Min: 1, Max: 1, Mode: ModeNoiseXX}
			for _, pair := range [][2]Preamble{{other, p}, {p, other}} {
				if v, err := Negotiate(pair[0], pair[1]); v != 1 || err != nil {
					t.Errorf("Negotiate(%v, %v) = %d, %v; want 1", pair[0], pair[1], v, err)
				}
			}
		},
	},
	"handshake": {
		func() []byte {
			b := AppendPreamble(nil, Preamble{Min: 1, Max: 1, Mode: ModePlain})
			b = AppendHello(b, 1, &docHelloA)
			return AppendResume(b, 1, Resume{Instance: docInstB, Delivered: 0})
		},
		func(t *testing.T, b []byte) {
			if len(b) != 182 {
				t.Errorf("handshake of %d bytes; the document says 182", len(b))
			}
			docPreamble(t, b[:min(len(b), PreambleLen)], Preamble{Min: 1, Max: 1, Mode: ModePlain})
			fs := docFrames(t, b[PreambleLen:], MaxHello, TypeHello, TypeResume)
			if fs[0].h.Length != 126 {
				t.Errorf("HELLO payload of %d bytes; the document says 126", fs[0].h.Length)
			}
			h, err := ParseHello(fs[0].p)
			if err != nil {
				t.Fatalf("ParseHello: %v", err)
			}
			if !reflect.DeepEqual(*h, docHelloA) {
				t.Errorf("ParseHello = %+v; want %+v", *h, docHelloA)
			}
			// The HELLO is standard msgpack: a general decoder sees the 7 keys.
			var m map[string]any
			if err := msgpack.Unmarshal(fs[0].p, &m); err != nil || len(m) != 7 || m["name"] != "node-a" {
				t.Errorf("msgpack view of the HELLO = %v, %v", m, err)
			}
			if r, err := ParseResume(fs[1].p); r != (Resume{Instance: docInstB}) || err != nil {
				t.Errorf("ParseResume = %+v, %v; want instance %#x and zeros", r, err, docInstB)
			}
		},
	},
	"resume": {
		func() []byte { return AppendResume(nil, 1, Resume{Instance: docInstA, Delivered: 41}) },
		func(t *testing.T, b []byte) {
			fs := docFrames(t, b, MinFrameLimit, TypeResume)
			if r, err := ParseResume(fs[0].p); r != (Resume{Instance: docInstA, Delivered: 41}) || err != nil {
				t.Errorf("ParseResume = %+v, %v", r, err)
			}
		},
	},
	"resume-partial": {
		func() []byte {
			return AppendResume(nil, 1, Resume{Instance: docInstA, Delivered: 42, Partial: 43, Chunks: 1})
		},
		func(t *testing.T, b []byte) {
			fs := docFrames(t, b, MinFrameLimit, TypeResume)
			want := Resume{Instance: docInstA, Delivered: 42, Partial: 43, Chunks: 1}
			if r, err := ParseResume(fs[0].p); r != want || err != nil {
				t.Errorf("ParseResume = %+v, %v; want %+v", r, err, want)
			}
		},
	},
	"progress": {
		func() []byte { return AppendProgress(nil, 1, Progress{Seq: 43, Chunks: 1}) },
		func(t *testing.T, b []byte) {
			fs := docFrames(t, b, MinFrameLimit, TypeProgress)
			if p, err := ParseProgress(fs[0].p); p != (Progress{Seq: 43, Chunks: 1}) || err != nil {
				t.Errorf("ParseProgress = %+v, %v; want seq 43, 1 chunk", p, err)
			}
		},
	},
	"data": {
		func() []byte { return AppendData(nil, 1, 0, 42, 1, 0, "demo.Reading", docReading) },
		func(t *testing.T, b []byte) {
			fs := docFrames(t, b, MinFrameLimit, TypeData)
			d := docData(t, fs[0], 0, 42, 1, "demo.Reading")
			if !bytes.Equal(d.Body, docReading) {
				t.Errorf("body %x; want %x", d.Body, docReading)
			}
			var v struct {
				Sensor string `msgpack:"sensor"`
				C      int    `msgpack:"c"`
			}
			if err := msgpack.Unmarshal(d.Body, &v); err != nil || v.Sensor != "t1" || v.C != 21 {
				t.Errorf("body decodes to %+v, %v; want sensor t1, c 21", v, err)
			}
		},
	},
	"data-chunked": {
		func() []byte {
			b := AppendData(nil, 1, FlagMore, 43, 0, 0, "", []byte("hello "))
			return AppendData(b, 1, 0, 43, 0, 0, "", []byte("world"))
		},
		func(t *testing.T, b []byte) {
			fs := docFrames(t, b, MinFrameLimit, TypeData, TypeData)
			var msg []byte
			for i, flags := range []uint8{FlagMore, 0} {
				d := docData(t, fs[i], flags, 43, 0, "")
				msg = append(msg, d.Body...)
			}
			if string(msg) != "hello world" {
				t.Errorf("reassembled %q; want %q", msg, "hello world")
			}
		},
	},
	"data-abort": {
		func() []byte {
			b := AppendData(nil, 1, FlagMore, 44, 0, 0, "", []byte("partial"))
			return AppendData(b, 1, FlagAbort, 44, 0, 0, "", nil)
		},
		func(t *testing.T, b []byte) {
			fs := docFrames(t, b, MinFrameLimit, TypeData, TypeData)
			if d := docData(t, fs[0], FlagMore, 44, 0, ""); string(d.Body) != "partial" {
				t.Errorf("first chunk %q; want %q", d.Body, "partial")
			}
			if d := docData(t, fs[1], FlagAbort, 44, 0, ""); len(d.Body) != 0 {
				t.Errorf("abort frame with a body of %d bytes", len(d.Body))
			}
		},
	},
	"ack": {
		func() []byte { return AppendAck(nil, 1, 44) },
		func(t *testing.T, b []byte) {
			fs := docFrames(t, b, MinFrameLimit, TypeAck)
			if seq, err := ParseAck(fs[0].p); seq != 44 || err != nil {
				t.Errorf("ParseAck = %d, %v; want 44", seq, err)
			}
		},
	},
	"ping": {
		func() []byte { return AppendPing(nil, 1, false, docNonce) },
		func(t *testing.T, b []byte) {
			fs := docFrames(t, b, MinFrameLimit, TypePing)
			if n, err := ParsePing(fs[0].p); n != docNonce || err != nil {
				t.Errorf("ParsePing = %#x, %v; want %#x", n, err, docNonce)
			}
		},
	},
	"pong": {
		func() []byte { return AppendPing(nil, 1, true, docNonce) },
		func(t *testing.T, b []byte) {
			fs := docFrames(t, b, MinFrameLimit, TypePong)
			if n, err := ParsePing(fs[0].p); n != docNonce || err != nil {
				t.Errorf("ParsePing = %#x, %v; want %#x", n, err, docNonce)
			}
		},
	},
	"reject": {
		func() []byte { return AppendClose(nil, 1, TypeReject, docReject) },
		func(t *testing.T, b []byte) {
			docClose(t, b, TypeReject, docReject)
		},
	},
	"goodbye": {
		func() []byte {
			return AppendClose(nil, 1, TypeGoodbye, Close{Code: CodeShutdown, Reason: "node closed"})
		},
		func(t *testing.T, b []byte) {
			docClose(t, b, TypeGoodbye, Close{Code: CodeShutdown, Reason: "node closed"})
		},
	},
	"goodbye-none": {
		func() []byte {
			return AppendClose(nil, 1, TypeGoodbye, Close{Code: CodeNone, Reason: "disconnected"})
		},
		func(t *testing.T, b []byte) {
			docClose(t, b, TypeGoodbye, Close{Code: CodeNone, Reason: "disconnected"})
		},
	},
	"extension": {
		func() []byte {
			return append(AppendHeader(nil, Header{Version: 1, Type: 0x80, Length: 4}), 0xde, 0xad, 0xbe, 0xef)
		},
		func(t *testing.T, b []byte) {
			fs := docFrames(t, b, MinFrameLimit, 0x80)
			if Known(fs[0].h.Type) || fs[0].h.Type&TypeIgnorable == 0 {
				t.Errorf("type %#x: known %v, ignorable bit %v; want an unknown extension", fs[0].h.Type, Known(fs[0].h.Type), fs[0].h.Type&TypeIgnorable != 0)
			}
			if !bytes.Equal(fs[0].p, []byte{0xde, 0xad, 0xbe, 0xef}) {
				t.Errorf("payload %x", fs[0].p)
			}
		},
	},
}

// docPreamble parses an example preamble and compares it with want.
func docPreamble(t *testing.T, b []byte, want Preamble) Preamble {
	t.Helper()
	if len(b) != PreambleLen {
		t.Fatalf("preamble of %d bytes", len(b))
	}
	p, err := ParsePreamble(b)
	if err != nil || p != want {
		t.Fatalf("ParsePreamble = %+v, %v; want %+v", p, err, want)
	}
	return p
}

// docFrame is a frame read from an example.
type docFrame struct {
	h Header
	p []byte
}

// docFrames splits b into frames with a Reader, as a receiver whose limit
// is maxPayload does, and checks that they have the given types, version 1
// and a zero reserved byte.
func docFrames(t *testing.T, b []byte, maxPayload uint32, types ...uint8) []docFrame {
	t.Helper()
	fr := NewReader(bytes.NewReader(b), 0)
	fr.Version, fr.MaxPayload = 1, maxPayload
	var fs []docFrame
	for off := 0; ; {
		h, p, err := fr.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("frame %d: %v", len(fs), err)
		}
		if b[off+3] != 0 {
			t.Errorf("frame %d: reserved header byte %#x", len(fs), b[off+3])
		}
		off += HeaderLen + len(p)
		fs = append(fs, docFrame{h: h, p: append([]byte(nil), p...)})
	}
	if len(fs) != len(types) {
		t.Fatalf("%d frames; want %d", len(fs), len(types))
	}
	for i, f := range fs {
		if f.h.Version != 1 || f.h.Type != types[i] || int(f.h.Length) != len(f.p) {
			t.Errorf("frame %d: header %+v; want version 1, type %s", i, f.h, TypeName(types[i]))
		}
		if f.h.Type != TypeData && f.h.Flags != 0 {
			t.Errorf("frame %d: %s with flags %#x", i, TypeName(f.h.Type), f.h.Flags)
		}
	}
	return fs
}

// docData parses a DATA frame and checks its flags and prefix.
func docData(t *testing.T, f docFrame, flags uint8, seq uint64, ser uint8, typ string) Data {
	t.Helper()
	if f.h.Flags != flags {
		t.Errorf("DATA flags %#x; want %#x", f.h.Flags, flags)
	}
	d, err := ParseData(f.p)
	if err != nil {
		t.Fatalf("ParseData: %v", err)
	}
	if d.Seq != seq || d.Serializer != ser || d.Compressor != 0 || string(d.Type) != typ {
		t.Errorf("DATA seq %d, serializer %d, compressor %d, type %q; want %d, %d, 0, %q",
			d.Seq, d.Serializer, d.Compressor, d.Type, seq, ser, typ)
	}
	return d
}

// docClose parses a REJECT or GOODBYE example.
func docClose(t *testing.T, b []byte, typ uint8, want Close) {
	t.Helper()
	fs := docFrames(t, b, MinFrameLimit, typ)
	c, err := ParseClose(fs[0].p)
	if err != nil || c != want {
		t.Errorf("ParseClose = %+v, %v; want %+v", c, err, want)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(fs[0].p, &m); err != nil || len(m) != 2 || m["reason"] != want.Reason {
		t.Errorf("msgpack view of the body = %v, %v", m, err)
	}
}

// docBlock is a named example block found in the document.
type docBlock struct {
	name string
	line int
	data []byte
}

var exampleMarker = regexp.MustCompile(`^<!-- example: ([a-z0-9][a-z0-9-]*) -->$`)

// readDocExamples returns every example of the document: a line
// "<!-- example: NAME -->" directly followed by a ```hex fenced block. A
// marker without its block, a ```hex block without a marker, and hex that
// does not decode are errors.
func readDocExamples(t *testing.T, path string) []docBlock {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n")
	var blocks []docBlock
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "```hex" {
			t.Errorf("%s:%d: ```hex block without an example marker on the line before", path, i+1)
			continue
		}
		if !strings.Contains(line, "<!-- example:") {
			continue
		}
		m := exampleMarker.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s:%d: malformed example marker %q", path, i+1, line)
			continue
		}
		if i+1 >= len(lines) || lines[i+1] != "```hex" {
			t.Errorf("%s:%d: example %q is not directly followed by a ```hex block", path, i+1, m[1])
			continue
		}
		end := slices.Index(lines[i+2:], "```")
		if end < 0 {
			t.Errorf("%s:%d: example %q: unterminated code block", path, i+1, m[1])
			break
		}
		text := strings.Join(strings.Fields(strings.Join(lines[i+2:i+2+end], " ")), "")
		b, err := hex.DecodeString(text)
		if err != nil || len(b) == 0 {
			t.Errorf("%s:%d: example %q: bad hex (%v)", path, i+1, m[1], err)
		} else {
			blocks = append(blocks, docBlock{name: m[1], line: i + 1, data: b})
		}
		i += 2 + end
	}
	return blocks
}

// TestProtocolDocExamples checks every example of docs/protocol.md against
// the encoders, and decodes it with the parsers. Each example must have a
// case in docExamples, and each case an example.
func TestProtocolDocExamples(t *testing.T) {
	blocks := readDocExamples(t, protocolDoc)
	seen := make(map[string]bool)
	for _, blk := range blocks {
		if seen[blk.name] {
			t.Errorf("%s:%d: example %q appears twice", protocolDoc, blk.line, blk.name)
			continue
		}
		seen[blk.name] = true
		ex, ok := docExamples[blk.name]
		if !ok {
			t.Errorf("%s:%d: example %q has no case in docExamples", protocolDoc, blk.line, blk.name)
			continue
		}
		t.Run(blk.name, func(t *testing.T) {
			if got := ex.encode(); !bytes.Equal(got, blk.data) {
				i := 0
				for i < min(len(got), len(blk.data)) && got[i] == blk.data[i] {
					i++
				}
				t.Errorf("%s:%d: the document and the encoder differ from byte %d on:\ndoc     %x\nencoder %x",
					protocolDoc, blk.line, i, blk.data, got)
			}
			ex.check(t, blk.data)
		})
	}
	names := make([]string, 0, len(docExamples))
	for name := range docExamples {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !seen[name] {
			t.Errorf("docExamples case %q has no example in %s", name, protocolDoc)
		}
	}
}

// TestProtocolDocCodes checks the code table of docs/protocol.md against
// the Code constants: every code, its name and whether it is retryable.
func TestProtocolDocCodes(t *testing.T) {
	src, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| ([0-9]+) \\| `([^`]+)` \\| [^|]+ \\| (yes|no) \\|$")
	rows := row.FindAllStringSubmatch(string(src), -1)
	if len(rows) != len(codeNames) {
		t.Errorf("the document's code table has %d rows; there are %d codes", len(rows), len(codeNames))
	}
	for i, r := range rows {
		n, err := strconv.Atoi(r[1])
		if err != nil || n != i {
			t.Errorf("row %d is code %s; want %d (in order)", i, r[1], i)
			continue
		}
		c := Code(n)
		if r[2] != c.String() || (r[3] == "yes") != c.Retryable() {
			t.Errorf("code %d: document says %q, retryable %s; code says %q, retryable %v",
				n, r[2], r[3], c.String(), c.Retryable())
		}
	}
	// Permanent is the inverse of Retryable, which the table documents.
	for c := Code(0); int(c) < len(codeNames); c++ {
		if pe := (&ProtocolError{Code: c}); pe.Permanent() == c.Retryable() {
			t.Errorf("code %d: Permanent %v, Retryable %v", c, pe.Permanent(), c.Retryable())
		}
	}
	if !errors.Is(&ProtocolError{Code: CodeVersion, Reason: "x"}, ErrInvalidVersion) {
		t.Error("a ProtocolError does not match its sentinel")
	}
}

// TestProtocolDocFrameTypes checks the frame type table of
// docs/protocol.md against the Type constants: every type this version
// knows is listed with its name, and nothing else is.
func TestProtocolDocFrameTypes(t *testing.T) {
	src, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| 0x([0-9A-F]{2}) \\| ([A-Z]+) \\|")
	listed := make(map[uint8]bool)
	for _, r := range row.FindAllStringSubmatch(string(src), -1) {
		v, err := strconv.ParseUint(r[1], 16, 8)
		if err != nil {
			t.Fatal(err)
		}
		typ := uint8(v)
		if !Known(typ) || TypeName(typ) != r[2] {
			t.Errorf("the document lists type %#02x as %s; the code knows it: %v, as %s", typ, r[2], Known(typ), TypeName(typ))
		}
		listed[typ] = true
	}
	for typ := 0; typ < 256; typ++ {
		if Known(uint8(typ)) && !listed[uint8(typ)] {
			t.Errorf("frame type %#02x (%s) is missing from the document's table", typ, TypeName(uint8(typ)))
		}
	}
}
