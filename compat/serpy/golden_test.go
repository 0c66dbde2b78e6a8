package serpy

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"
)

// unhex turns "de ca fe" into bytes.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serpy2 frames, byte for byte, from the layout: magic, type, uint32 LE
// byte sum, uint32 LE length, data. The same frames go both ways: a client
// and a server send them alike.
var goldenFrames = []struct {
	name  string
	value any
	frame string
}{
	{"int 42", int64(42), "de ca fe ca fe 01 2a 00 00 00 08 00 00 00 2a 00 00 00 00 00 00 00"},
	{"int -1", int64(-1), "de ca fe ca fe 01 f8 07 00 00 08 00 00 00 ff ff ff ff ff ff ff ff"},
	{"int min", int64(math.MinInt64), "de ca fe ca fe 01 80 00 00 00 08 00 00 00 00 00 00 00 00 00 00 80"},
	// "0x1.8000000000000p+0", 20 bytes summing to 0x44a.
	{"float 1.5", 1.5, "de ca fe ca fe 11 4a 04 00 00 14 00 00 00 30 78 31 2e 38 30 30 30 30 30 30 30 30 30 30 30 30 70 2b 30"},
	// "-0x1.999999999999ap-4"
	{"float -0.1", -0.1, "de ca fe ca fe 11 12 05 00 00 15 00 00 00 2d 30 78 31 2e 39 39 39 39 39 39 39 39 39 39 39 39 61 70 2d 34"},
	// "0x0.0p+0"
	{"float 0", 0.0, "de ca fe ca fe 11 01 02 00 00 08 00 00 00 30 78 30 2e 30 70 2b 30"},
	{"str héllo", "héllo", "de ca fe ca fe 21 1b 03 00 00 06 00 00 00 68 c3 a9 6c 6c 6f"},
	{"str empty", "", "de ca fe ca fe 21 00 00 00 00 00 00 00 00"},
	{"bytes", []byte{0x00, 0x01, 0xff}, "de ca fe ca fe 81 00 01 00 00 03 00 00 00 00 01 ff"},
}

func TestGoldenFramesEncode(t *testing.T) {
	for i, tc := range goldenFrames {
		got, err := MarshalFrame(tc.value)
		if err != nil {
			t.Fatalf("%d. MarshalFrame(%v): %v", i, tc.value, err)
		}
		if want := unhex(t, tc.frame); !bytes.Equal(got, want) {
			t.Errorf("%d. MarshalFrame(%v) = % x; want % x", i, tc.value, got, want)
		}
	}
}

func TestGoldenFramesDecode(t *testing.T) {
	var stream []byte
	for _, tc := range goldenFrames {
		stream = append(stream, unhex(t, tc.frame)...)
	}
	fr := NewFrameReader(bytes.NewReader(stream), 0)
	for i, tc := range goldenFrames {
		v, err := fr.ReadValue()
		if err != nil {
			t.Fatalf("%d. ReadValue (%s): %v", i, tc.name, err)
		}
		switch want := tc.value.(type) {
		case []byte:
			if !bytes.Equal(v.([]byte), want) {
				t.Errorf("%d. ReadValue = %v; want %v", i, v, want)
			}
		case float64:
			if f := v.(float64); math.Float64bits(f) != math.Float64bits(want) {
				t.Errorf("%d. ReadValue = %v; want %v", i, v, want)
			}
		default:
			if v != tc.value {
				t.Errorf("%d. ReadValue = %#v; want %#v", i, v, tc.value)
			}
		}
	}
}

func TestEncodeGoIntegers(t *testing.T) {
	for i, v := range []any{42, int8(42), int16(42), int32(42), uint(42), uint8(42), uint16(42), uint32(42), uint64(42)} {
		got, err := MarshalFrame(v)
		if err != nil {
			t.Fatalf("%d. MarshalFrame(%T): %v", i, v, err)
		}
		if want := unhex(t, goldenFrames[0].frame); !bytes.Equal(got, want) {
			t.Errorf("%d. MarshalFrame(%T(42)) = % x; want % x", i, v, got, want)
		}
	}
	if _, err := MarshalFrame(uint64(math.MaxUint64)); err == nil {
		t.Error("MarshalFrame(MaxUint64) succeeded; Python's to_bytes(8, signed=True) refuses it")
	}
	if _, err := MarshalFrame(struct{}{}); err == nil {
		t.Error("MarshalFrame(struct{}) succeeded")
	}
	if _, err := MarshalFrame("\xff"); err == nil {
		t.Error("MarshalFrame(invalid UTF-8) succeeded")
	}
}

func TestDecodeIntLengths(t *testing.T) {
	for i, tc := range []struct {
		data string
		want int64
		ok   bool
	}{
		{"", 0, true},
		{"ff", -1, true},
		{"7f", 127, true},
		{"80", -128, true},
		{"00 01", 256, true},
		{"ff ff ff ff ff ff ff ff ff ff", -1, true},         // sign extension beyond 8 bytes
		{"00 00 00 00 00 00 00 80 ff", math.MinInt64, true}, // fits
		{"00 00 00 00 00 00 00 80 00", 0, false},            // 2^63: too big
		{"ff ff ff ff ff ff ff 7f ff", 0, false},            // -2^63-1... does not fit
		{"00 00 00 00 00 00 00 00 01", 0, false},            // 2^64
	} {
		v, err := Decode(TypeInt, unhex(t, tc.data))
		if (err == nil) != tc.ok || tc.ok && v != tc.want {
			t.Errorf("%d. Decode(int, %s) = %v, %v; want %v ok=%v", i, tc.data, v, err, tc.want, tc.ok)
		}
	}
}

func TestFrameErrors(t *testing.T) {
	good := unhex(t, goldenFrames[0].frame)
	for i, tc := range []struct {
		name  string
		frame []byte
		want  error
	}{
		{"bad magic", append([]byte{0xDE, 0xCA, 0xFE, 0xCA, 0xFF}, good[5:]...), ErrBadMagic},
		{"checksum", func() []byte { b := bytes.Clone(good); b[6]++; return b }(), ErrChecksum},
		{"too large", func() []byte { b := bytes.Clone(good[:14]); b[13] = 0x7f; return b }(), ErrFrameTooLarge},
	} {
		_, _, err := NewFrameReader(bytes.NewReader(tc.frame), 1<<20).ReadFrame()
		if !errorsIs(err, tc.want) {
			t.Errorf("%d. ReadFrame(%s) = %v; want %v", i, tc.name, err, tc.want)
		}
	}
	if _, err := Decode(Type(0x42), nil); !errorsIs(err, ErrUnknownType) {
		t.Errorf("Decode(0x42) = %v; want ErrUnknownType", err)
	}
	if _, err := Decode(TypeFloat, []byte("0x1.8p+0é")); !errorsIs(err, ErrBadValue) {
		t.Errorf("Decode(float non-ASCII) = %v; want ErrBadValue", err)
	}
	if _, err := Decode(TypeStr, []byte{0xff}); !errorsIs(err, ErrBadValue) {
		t.Errorf("Decode(str invalid UTF-8) = %v; want ErrBadValue", err)
	}
	if _, _, err := NewFrameReader(bytes.NewReader(good[:20]), 0).ReadFrame(); err == nil || err.Error() != "unexpected EOF" {
		t.Errorf("ReadFrame(truncated) = %v; want unexpected EOF", err)
	}
}

// serpy v1 blocks, byte for byte, in both directions: what a sender writes
// for each mode, and the control blocks each side answers with.
func TestGoldenBlocks(t *testing.T) {
	for i, tc := range []struct {
		data []byte
		mode Mode
		want string
	}{
		{[]byte("hello"), ModePlain, "68 65 6c 6c 6f 1f"},
		{[]byte("hello"), ModeAck, "68 65 6c 6c 6f 04 1f"},
		{[]byte("hello"), ModeB85, "58 6b 7e 30 7b 5a 76 1f"},          // "Xk~0{Zv"
		{[]byte("hello"), ModeB85Ack, "58 6b 7e 30 7b 5a 76 04 1f"},    // "Xk~0{Zv" EOT
		{[]byte{0xff, 0xff, 0xff, 0xff}, ModeB85, "7c 4e 73 43 30 1f"}, // "|NsC0"
		{nil, ModeAck, "04 1f"},
		{nil, ModeB85Ack, "04 1f"},
	} {
		got, err := EncodeBlock(tc.data, tc.mode)
		if err != nil {
			t.Fatalf("%d. EncodeBlock(%q, %v): %v", i, tc.data, tc.mode, err)
		}
		if want := unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("%d. EncodeBlock(%q, %v) = % x; want % x", i, tc.data, tc.mode, got, want)
		}
	}
	for m, want := range map[Mode]string{
		ModePlain:  "01 53 45 54 4d 4f 44 45 30 1f", // \x01SETMODE0
		ModeAck:    "01 53 45 54 4d 4f 44 45 31 1f",
		ModeB85:    "01 53 45 54 4d 4f 44 45 32 1f",
		ModeB85Ack: "01 53 45 54 4d 4f 44 45 33 1f",
	} {
		if got := SetModeBlock(m); !bytes.Equal(got, unhex(t, want)) {
			t.Errorf("SetModeBlock(%v) = % x; want %s", m, got, want)
		}
	}
	if got, want := append(bytes.Clone(ctlAckMode), UnitSeparator), unhex(t, "01 41 43 4b 4d 4f 44 43 47 1f"); !bytes.Equal(got, want) {
		t.Errorf("ACKMODCG = % x; want % x", got, want)
	}
	if got, want := append(bytes.Clone(ctlAckEOT), UnitSeparator), unhex(t, "01 41 43 4b 45 4f 54 21 21 1f"); !bytes.Equal(got, want) {
		t.Errorf("ACKEOT!! = % x; want % x", got, want)
	}
}

func TestEncodeBlockRefuses(t *testing.T) {
	for i, tc := range []struct {
		data []byte
		mode Mode
		want error
	}{
		{[]byte("a\x1fb"), ModePlain, ErrUnsafeData},
		{[]byte("a\x1fb"), ModeAck, ErrUnsafeData},
		{[]byte("a\x04b"), ModeAck, ErrUnsafeData},
		{[]byte("\x01SETMODE2"), ModePlain, ErrUnsafeData},
		{nil, ModePlain, ErrUnsafeData},
		{nil, ModeB85, ErrUnsafeData},
		{[]byte("x"), ModePickle, ErrPickleRefused},
		{[]byte("x"), ModePickleAck, ErrPickleRefused},
		{[]byte("x"), Mode(7), ErrUnsafeData},
	} {
		if _, err := EncodeBlock(tc.data, tc.mode); !errorsIs(err, tc.want) {
			t.Errorf("%d. EncodeBlock(%q, %v) = %v; want %v", i, tc.data, tc.mode, err, tc.want)
		}
	}
	// a plain 0x04 is fine in mode 0, and anything is fine in base85
	for _, m := range []Mode{ModePlain, ModeB85, ModeB85Ack} {
		if _, err := EncodeBlock([]byte("a\x04\x1f\x01"), m); m != ModePlain && err != nil {
			t.Errorf("EncodeBlock(control bytes, %v) = %v", m, err)
		}
	}
}

func TestToBytesV1(t *testing.T) {
	for i, tc := range []struct {
		v        any
		mode     Mode
		want     string
		wantMode Mode
	}{
		{"text", ModePlain, "text", ModePlain},
		{42, ModeAck, "42", ModeAck},
		{uint8(7), ModePlain, "7", ModePlain},
		{1.5, ModePlain, "1.5", ModePlain},
		{1e16, ModePlain, "1e+16", ModePlain},
		{float32(0.5), ModePlain, "0.5", ModePlain},
		{[]byte{1}, ModePlain, "\x01", ModeB85},
		{[]byte{1}, ModeAck, "\x01", ModeB85Ack},
		{[]byte{1}, ModePickle, "\x01", ModeB85},
		{[]byte{1}, ModePickleAck, "\x01", ModeB85Ack},
		{[]byte{1}, ModeB85Ack, "\x01", ModeB85Ack},
	} {
		b, m, err := ToBytesV1(tc.v, tc.mode)
		if err != nil || string(b) != tc.want || m != tc.wantMode {
			t.Errorf("%d. ToBytesV1(%v, %v) = %q, %v, %v; want %q, %v", i, tc.v, tc.mode, b, m, err, tc.want, tc.wantMode)
		}
	}
	for _, v := range []any{true, map[string]int{}, nil} {
		if _, _, err := ToBytesV1(v, ModePlain); !errorsIs(err, ErrPickleRefused) {
			t.Errorf("ToBytesV1(%T) = %v; want ErrPickleRefused", v, err)
		}
	}
}

// The receiving state machine, fed the blocks a Python sender produces.
func TestV1Receiver(t *testing.T) {
	var r v1Receiver
	type out struct {
		ev  v1Event
		msg string
	}
	feed := func(block string) out {
		t.Helper()
		ev, msg, err := r.block([]byte(block))
		if err != nil {
			t.Fatalf("block(%q): %v", block, err)
		}
		return out{ev, string(msg)}
	}
	for i, tc := range []struct {
		block string
		want  out
	}{
		{"plain", out{v1Data, "plain"}},
		{"\x01SETMODE1", out{v1SetMode, ""}},
		{"hel", out{v1None, ""}}, // serpy accumulates until EOT
		{"lo\x04", out{v1DataAck, "hello"}},
		{"\x01SETMODE3", out{v1SetMode, ""}},
		{"Xk~0{Zv\x04", out{v1DataAck, "hello"}},
		{"\x01SETMODE2", out{v1SetMode, ""}},
		{"|NsC0", out{v1Data, "\xff\xff\xff\xff"}},
		{"\x01ACKEOT!!", out{v1AckEOT, ""}},
		{"\x01ACKMODCG", out{v1AckMode, ""}},
		{"\x01SETMODE0", out{v1SetMode, ""}},
		{"again", out{v1Data, "again"}},
	} {
		if got := feed(tc.block); got != tc.want {
			t.Errorf("%d. block(%q) = %+v; want %+v", i, tc.block, got, tc.want)
		}
	}
	for i, tc := range []struct {
		setup []string
		block string
		want  error
	}{
		{nil, "\x01SETMODE4", ErrPickleRefused},
		{nil, "\x01SETMODE5", ErrPickleRefused},
		{nil, "\x01SETMODE9", ErrBadControl},
		{nil, "\x01SETMODEx", ErrBadControl},
		{nil, "\x01SETMODE12", ErrBadControl},
		{nil, "\x01HELLO", ErrBadControl},
		{[]string{"\x01SETMODE1"}, "a\x04b\x04", ErrBadMessage},
		{[]string{"\x01SETMODE2"}, "~~~~~", ErrBadMessage},
		{[]string{"\x01SETMODE2"}, "ab\"cd", ErrBadMessage},
		{[]string{"\x01SETMODE3"}, "~~~~~\x04", ErrBadMessage},
	} {
		r := v1Receiver{}
		for _, b := range tc.setup {
			if _, _, err := r.block([]byte(b)); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := r.block([]byte(tc.block)); !errorsIs(err, tc.want) {
			t.Errorf("%d. block(%q) = %v; want %v", i, tc.block, err, tc.want)
		}
	}
}

func TestBlockReader(t *testing.T) {
	br := NewBlockReader(strings.NewReader("a\x1f\x1f\x1fbc\x1fpar"), 4)
	for _, want := range []string{"a", "bc"} {
		b, err := br.ReadBlock()
		if err != nil || string(b) != want {
			t.Fatalf("ReadBlock = %q, %v; want %q", b, err, want)
		}
	}
	if _, err := br.ReadBlock(); err == nil || err.Error() != "unexpected EOF" {
		t.Errorf("ReadBlock(partial) = %v; want unexpected EOF", err)
	}
	br = NewBlockReader(strings.NewReader("toolong\x1f"), 4)
	if _, err := br.ReadBlock(); !errorsIs(err, ErrFrameTooLarge) {
		t.Errorf("ReadBlock(too long) = %v; want ErrFrameTooLarge", err)
	}
}
