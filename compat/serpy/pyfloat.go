package serpy

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// FloatHex formats f as Python's float.hex() does: "0x1.8000000000000p+0"
// for 1.5, always 13 hexadecimal digits after the point for non-zero
// values, a leading "0x0." for subnormals (exponent -1022), "0x0.0p+0"
// and "-0x0.0p+0" for the zeros, and "inf", "-inf" and "nan".
func FloatHex(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	bits := math.Float64bits(f)
	sign := ""
	if bits>>63 != 0 {
		sign = "-"
	}
	exp := int((bits >> 52) & 0x7FF)
	mant := bits & (1<<52 - 1)
	if exp == 0 && mant == 0 {
		return sign + "0x0.0p+0"
	}
	lead := 1
	e := exp - 1023
	if exp == 0 { // subnormal: 0.mantissa * 2^-1022
		lead = 0
		e = -1022
	}
	esign := '+'
	if e < 0 {
		esign = '-'
		e = -e
	}
	return fmt.Sprintf("%s0x%d.%013xp%c%d", sign, lead, mant, esign, e)
}

// ErrFloatOverflow is returned by ParseFloatHex for a value too large for
// a float64, where Python raises OverflowError.
var ErrFloatOverflow = errors.New("serpy: hexadecimal value too large to represent as a float")

// ParseFloatHex parses s as Python's float.fromhex(s) does: optional
// surrounding whitespace, an optional sign, "inf", "infinity" or "nan" in
// any case, or an optional "0x" prefix, hexadecimal digits with an
// optional point (at least one digit), and an optional binary exponent
// "p[+-]digits". The result is rounded to nearest, ties to even, with
// gradual underflow to zero; values too large fail with ErrFloatOverflow.
func ParseFloatHex(s string) (float64, error) {
	t := strings.Trim(s, " \t\n\r\v\f")
	bad := fmt.Errorf("serpy: invalid hexadecimal floating-point string %q", s)
	if t == "" {
		return 0, bad
	}
	neg := false
	switch t[0] {
	case '-':
		neg = true
		t = t[1:]
	case '+':
		t = t[1:]
	}
	switch strings.ToLower(t) {
	case "inf", "infinity":
		if neg {
			return math.Inf(-1), nil
		}
		return math.Inf(1), nil
	case "nan":
		return math.NaN(), nil
	}
	if len(t) >= 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') {
		t = t[2:]
	}
	// Validate the grammar ourselves: strconv accepts forms that Python
	// refuses (underscores, decimal digits after the exponent's sign...).
	i, digits := 0, 0
	for i < len(t) && isHex(t[i]) {
		i, digits = i+1, digits+1
	}
	if i < len(t) && t[i] == '.' {
		i++
		for i < len(t) && isHex(t[i]) {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return 0, bad
	}
	mantissa := t[:i]
	exponent := "0"
	if i < len(t) {
		if t[i] != 'p' && t[i] != 'P' {
			return 0, bad
		}
		e := t[i+1:]
		j := 0
		if j < len(e) && (e[j] == '+' || e[j] == '-') {
			j++
		}
		if j == len(e) {
			return 0, bad
		}
		for k := j; k < len(e); k++ {
			if e[k] < '0' || e[k] > '9' {
				return 0, bad
			}
		}
		exponent = e
	}
	if strings.HasPrefix(mantissa, ".") {
		mantissa = "0" + mantissa
	}
	if strings.HasSuffix(mantissa, ".") {
		mantissa += "0"
	}
	// strconv saturates huge exponents, so the exponent may be any length.
	f, err := strconv.ParseFloat("0x"+mantissa+"p"+exponent, 64)
	if err != nil {
		var numErr *strconv.NumError
		if errors.As(err, &numErr) && errors.Is(numErr.Err, strconv.ErrRange) && math.IsInf(f, 0) {
			return 0, ErrFloatOverflow
		}
		if !(errors.As(err, &numErr) && errors.Is(numErr.Err, strconv.ErrRange)) {
			return 0, bad
		}
		// Underflow to zero is not an error in Python.
	}
	if neg {
		f = -f
	}
	return f, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// FloatRepr formats f as Python's repr(f) and str(f) do: the shortest
// digits that round-trip, in positional notation (with ".0" when
// integral) when the decimal exponent is between -4 and 16, else in
// exponential notation with at least two exponent digits ("1e+16",
// "1e-05"); "inf", "-inf" and "nan" otherwise.
func FloatRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	// Shortest round-trip digits and exponent: d.ddde±x.
	e := strconv.FormatFloat(f, 'e', -1, 64)
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	ePos := strings.IndexByte(e, 'e')
	digits := strings.Replace(e[:ePos], ".", "", 1)
	exp, _ := strconv.Atoi(e[ePos+1:])
	decpt := exp + 1 // position of the decimal point after the first digit
	if f == 0 {
		return sign + "0.0"
	}
	if decpt > -4 && decpt <= 16 {
		switch {
		case decpt <= 0:
			return sign + "0." + strings.Repeat("0", -decpt) + digits
		case decpt >= len(digits):
			return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
		default:
			return sign + digits[:decpt] + "." + digits[decpt:]
		}
	}
	mant := digits[:1]
	if len(digits) > 1 {
		mant += "." + digits[1:]
	}
	esign := "+"
	if exp < 0 {
		esign, exp = "-", -exp
	}
	return fmt.Sprintf("%s%se%s%02d", sign, mant, esign, exp)
}
