package serpy

import (
	"bytes"
	"math"
	"testing"
)

func TestB85(t *testing.T) {
	// Vectors of Python's base64.b85encode, derived by hand from the
	// RFC 1924 alphabet: a 4-byte group is a big-endian number written in
	// five base-85 digits; a partial group of n bytes keeps n+1 digits.
	for i, tc := range []struct{ in, out string }{
		{"", ""},
		{"\x00", "00"},
		{"\x00\x00\x00\x00", "00000"},
		{"hello", "Xk~0{Zv"},
		{"\xff\xff\xff\xff", "|NsC0"},
		{"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09", "009C61O)~M2nh"},
	} {
		if got := string(B85Encode([]byte(tc.in))); got != tc.out {
			t.Errorf("%d. B85Encode(%q) = %q; want %q", i, tc.in, got, tc.out)
		}
		got, err := B85Decode([]byte(tc.out))
		if err != nil || string(got) != tc.in {
			t.Errorf("%d. B85Decode(%q) = %q, %v; want %q", i, tc.out, got, err, tc.in)
		}
	}
	for i, tc := range []struct {
		in       string
		pos      int
		overflow bool
	}{
		{"~", 0, true},       // padded to "~~~~~": above 2^32-1
		{"|NsC1", 0, true},   // 2^32
		{"0000\"", 4, false}, // '"' is not in the alphabet
		{"00000 ", 5, false}, // no whitespace either
		{"00000}0000", 5, true},
	} {
		_, err := B85Decode([]byte(tc.in))
		var de *B85DecodeError
		if !errorsAs(err, &de) || de.Pos != tc.pos || de.Overflow != tc.overflow {
			t.Errorf("%d. B85Decode(%q) = %v; want error at %d overflow=%v", i, tc.in, err, tc.pos, tc.overflow)
		}
	}
	// A final group of one character yields nothing, as in Python.
	if got, err := B85Decode([]byte("0")); err != nil || len(got) != 0 {
		t.Errorf("B85Decode(\"0\") = %q, %v; want empty", got, err)
	}
}

func TestFloatHex(t *testing.T) {
	for i, tc := range []struct {
		f    float64
		want string
	}{
		{1.5, "0x1.8000000000000p+0"},
		{-0.1, "-0x1.999999999999ap-4"},
		{0, "0x0.0p+0"},
		{math.Copysign(0, -1), "-0x0.0p+0"},
		{1, "0x1.0000000000000p+0"},
		{1024, "0x1.0000000000000p+10"},
		{math.SmallestNonzeroFloat64, "0x0.0000000000001p-1022"},
		{math.MaxFloat64, "0x1.fffffffffffffp+1023"},
		{math.Inf(1), "inf"},
		{math.Inf(-1), "-inf"},
		{math.NaN(), "nan"},
	} {
		if got := FloatHex(tc.f); got != tc.want {
			t.Errorf("%d. FloatHex(%v) = %q; want %q", i, tc.f, got, tc.want)
		}
	}
}

func TestParseFloatHex(t *testing.T) {
	for i, tc := range []struct {
		s    string
		want float64
	}{
		{"0x1.8000000000000p+0", 1.5},
		{"0x1.8p0", 1.5},
		{"1.8", 1.5},
		{"0X1.8P+0", 1.5},
		{" \t0x1.8p0\n", 1.5},
		{"-0x1.999999999999ap-4", -0.1},
		{".8", 0.5},
		{"1.", 1},
		{"0x10", 16},
		{"0x0.0000000000001p-1022", math.SmallestNonzeroFloat64},
		{"0x1p-1080", 0}, // underflows to zero without error, as in Python
		{"-0x0p0", math.Copysign(0, -1)},
		{"inf", math.Inf(1)},
		{"-Infinity", math.Inf(-1)},
		{"+INF", math.Inf(1)},
		{"0x1p+99999999999999999999", math.Inf(1)}, // overflow: error below
	} {
		got, err := ParseFloatHex(tc.s)
		if math.IsInf(tc.want, 1) && tc.s[0] == '0' {
			if !errorsIs(err, ErrFloatOverflow) {
				t.Errorf("%d. ParseFloatHex(%q) = %v, %v; want ErrFloatOverflow", i, tc.s, got, err)
			}
			continue
		}
		if err != nil || math.Float64bits(got) != math.Float64bits(tc.want) {
			t.Errorf("%d. ParseFloatHex(%q) = %v, %v; want %v", i, tc.s, got, err, tc.want)
		}
	}
	if f, err := ParseFloatHex("nan"); err != nil || !math.IsNaN(f) {
		t.Errorf("ParseFloatHex(nan) = %v, %v", f, err)
	}
	for i, s := range []string{"", "0x", "p1", "0x1p", "0x1p+", "0x1_0p0", "0x1.8p0x", "0x1pe", "--1", "0x.p1", "in", "0x1p1.5"} {
		if f, err := ParseFloatHex(s); err == nil {
			t.Errorf("%d. ParseFloatHex(%q) = %v; want an error", i, s, f)
		}
	}
}

func TestFloatRepr(t *testing.T) {
	for i, tc := range []struct {
		f    float64
		want string
	}{
		{1.5, "1.5"},
		{0, "0.0"},
		{math.Copysign(0, -1), "-0.0"},
		{100, "100.0"},
		{1e15, "1000000000000000.0"},
		{1e16, "1e+16"},
		{1.5e300, "1.5e+300"},
		{0.0001, "0.0001"},
		{0.00001, "1e-05"},
		{-0.1, "-0.1"},
		{123456.789, "123456.789"},
		{math.SmallestNonzeroFloat64, "5e-324"},
		{math.Inf(1), "inf"},
		{math.NaN(), "nan"},
	} {
		if got := FloatRepr(tc.f); got != tc.want {
			t.Errorf("%d. FloatRepr(%v) = %q; want %q", i, tc.f, got, tc.want)
		}
	}
}

func TestFloatHexRoundTrip(t *testing.T) {
	for _, f := range []float64{1.5, -0.1, 3.141592653589793, 5e-324, 2.2250738585072014e-308, 1e308, -7} {
		got, err := ParseFloatHex(FloatHex(f))
		if err != nil || got != f {
			t.Errorf("ParseFloatHex(FloatHex(%v)) = %v, %v", f, got, err)
		}
	}
	_ = bytes.Equal
}
