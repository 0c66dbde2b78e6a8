package serpy

import (
	"bytes"
	"math"
	"testing"
)

func FuzzFrameReader(f *testing.F) {
	for _, g := range goldenFrames {
		f.Add(unhex(f, g.frame))
	}
	f.Add([]byte{0xDE, 0xCA, 0xFE, 0xCA, 0xFE, 0x01, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := NewFrameReader(bytes.NewReader(in), 1<<16)
		for {
			typ, data, err := fr.ReadFrame()
			if err != nil {
				return
			}
			v, err := Decode(typ, data)
			if err != nil {
				continue
			}
			// What decodes re-encodes to data that decodes the same.
			typ2, data2, err := Encode(v)
			if err != nil {
				t.Fatalf("Encode(%#v) after Decode: %v", v, err)
			}
			v2, err := Decode(typ2, data2)
			if err != nil {
				t.Fatalf("Decode(Encode(%#v)): %v", v, err)
			}
			switch x := v.(type) {
			case float64:
				if math.Float64bits(x) != math.Float64bits(v2.(float64)) && !math.IsNaN(x) {
					t.Fatalf("float %v became %v", x, v2)
				}
			case []byte:
				if !bytes.Equal(x, v2.([]byte)) {
					t.Fatalf("bytes changed")
				}
			default:
				if v != v2 {
					t.Fatalf("%#v became %#v", v, v2)
				}
			}
		}
	})
}

func FuzzV1Stream(f *testing.F) {
	f.Add([]byte("hi\x1f\x01SETMODE1\x1fab\x04\x1f\x01SETMODE2\x1fXk~0{Zv\x1f\x01ACKEOT!!\x1f"))
	f.Add([]byte("\x01SETMODE3\x1f5&\x04\x1f"))
	f.Add([]byte("\x01SETMODE4\x1f"))
	f.Fuzz(func(t *testing.T, in []byte) {
		br := NewBlockReader(bytes.NewReader(in), 1<<12)
		r := v1Receiver{max: 1 << 12}
		for {
			b, err := br.ReadBlock()
			if err != nil {
				return
			}
			if len(b) > 1<<12 {
				t.Fatalf("block of %d bytes over the limit", len(b))
			}
			if _, _, err := r.block(b); err != nil {
				return
			}
			if len(r.pending) > 1<<12 {
				t.Fatalf("pending message of %d bytes over the limit", len(r.pending))
			}
			if r.mode < ModePlain || r.mode > ModeB85Ack {
				t.Fatalf("receiver in %v", r.mode)
			}
		}
	})
}

func FuzzB85(f *testing.F) {
	f.Add([]byte("hello"))
	f.Add([]byte("~"))
	f.Add([]byte("|NsC0"))
	f.Fuzz(func(t *testing.T, in []byte) {
		dec, err := B85Decode(B85Encode(in))
		if err != nil || !bytes.Equal(dec, in) {
			t.Fatalf("B85Decode(B85Encode(%q)) = %q, %v", in, dec, err)
		}
		if out, err := B85Decode(in); err == nil {
			// every 5 characters give 4 bytes; a partial group of n+1 gives n
			if want := len(in)/5*4 + max(len(in)%5-1, 0); len(out) != want {
				t.Fatalf("B85Decode(%q) gave %d bytes; want %d", in, len(out), want)
			}
		}
	})
}

func FuzzParseFloatHex(f *testing.F) {
	for _, s := range []string{"0x1.8p0", "-0x1.999999999999ap-4", "inf", "nan", " 1.8 ", "0x1p-1080", "0x.p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseFloatHex(s)
		if err != nil || math.IsNaN(v) {
			return
		}
		back, err := ParseFloatHex(FloatHex(v))
		if err != nil || math.Float64bits(back) != math.Float64bits(v) {
			t.Fatalf("ParseFloatHex(FloatHex(%v)) = %v, %v", v, back, err)
		}
	})
}
