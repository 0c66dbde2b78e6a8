package serpy

import (
	"fmt"
)

// b85Alphabet is the alphabet of Python's base64.b85encode, the one of
// RFC 1924 (and git's binary patches). It is not the Adobe/btoa alphabet
// of Go's encoding/ascii85, which starts at '!' and folds zero words
// into 'z'.
const b85Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~"

var b85Decode [256]byte // value+1; 0 marks a byte outside the alphabet

func init() {
	for i := range len(b85Alphabet) {
		b85Decode[b85Alphabet[i]] = byte(i + 1)
	}
}

// B85Encode encodes src as Python's base64.b85encode(src) does, without
// padding: each 4-byte group becomes 5 characters, most significant digit
// first, and a final partial group of n bytes is padded with zero bytes,
// encoded, and cut to n+1 characters.
func B85Encode(src []byte) []byte {
	out := make([]byte, 0, (len(src)+3)/4*5)
	for i := 0; i < len(src); i += 4 {
		var word uint32
		n := min(4, len(src)-i)
		for j := range 4 {
			word <<= 8
			if j < n {
				word |= uint32(src[i+j])
			}
		}
		var chunk [5]byte
		for j := 4; j >= 0; j-- {
			chunk[j] = b85Alphabet[word%85]
			word /= 85
		}
		out = append(out, chunk[:n+1]...)
	}
	return out
}

// B85DecodeError reports input that Python's base64.b85decode rejects,
// with the same reasons and positions.
type B85DecodeError struct {
	Pos      int  // byte offset in the input
	Overflow bool // the 5-character group starting at Pos exceeds 2^32-1
}

func (e *B85DecodeError) Error() string {
	if e.Overflow {
		return fmt.Sprintf("serpy: base85 overflow in hunk starting at byte %d", e.Pos)
	}
	return fmt.Sprintf("serpy: bad base85 character at position %d", e.Pos)
}

// B85Decode decodes src as Python's base64.b85decode(src) does: the input
// is padded with '~' to a multiple of 5, every group must decode to at
// most 2^32-1, and the padding's bytes are cut from the result. Like
// Python it accepts a final group of one character (which yields no byte)
// and rejects whitespace.
func B85Decode(src []byte) ([]byte, error) {
	padding := (5 - len(src)%5) % 5
	out := make([]byte, 0, (len(src)+padding)/5*4)
	for i := 0; i < len(src); i += 5 {
		var acc uint64
		for j := range 5 {
			c := byte('~')
			if i+j < len(src) {
				c = src[i+j]
			}
			v := b85Decode[c]
			if v == 0 {
				return nil, &B85DecodeError{Pos: i + j}
			}
			acc = acc*85 + uint64(v-1)
		}
		if acc > 0xFFFFFFFF {
			return nil, &B85DecodeError{Pos: i, Overflow: true}
		}
		out = append(out, byte(acc>>24), byte(acc>>16), byte(acc>>8), byte(acc))
	}
	return out[:len(out)-padding], nil
}
