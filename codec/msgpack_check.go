package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var (
	errMsgpackTruncated = errors.New("msgpack: unexpected end of input")
	errMsgpackTrailing  = errors.New("msgpack: trailing bytes after value")
	errMsgpackLength    = errors.New("msgpack: declared length exceeds input")
)

// checkMsgpack verifies, without recursion or allocation for shallow
// input, that b holds exactly one well-formed msgpack value whose arrays and
// maps nest at most maxDepth deep, and whose declared lengths fit in the
// bytes that remain. Once it passes, a decoder cannot be made to recurse
// deeper than maxDepth or to allocate for more elements than b has bytes.
func checkMsgpack(b []byte, maxDepth int) error {
	// pending[i] is the number of values still expected by the container
	// at depth i+1; left is the count for the innermost open container
	// (or the single top-level value).
	var fixed [32]uint64
	pending := fixed[:0]
	left := uint64(1)
	pos := 0
	for {
		if left == 0 {
			if len(pending) == 0 {
				break
			}
			left = pending[len(pending)-1]
			pending = pending[:len(pending)-1]
			continue
		}
		left--
		if pos >= len(b) {
			return errMsgpackTruncated
		}
		c := b[pos]
		pos++
		var (
			skip  uint64 // bytes that follow the header
			items uint64 // values that follow, for arrays and maps
			isCon bool
		)
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f: // fixmap
			items, isCon = 2*uint64(c&0x0f), true
		case c <= 0x9f: // fixarray
			items, isCon = uint64(c&0x0f), true
		case c <= 0xbf: // fixstr
			skip = uint64(c & 0x1f)
		default:
			var n uint64
			var err error
			switch c {
			case 0xc0, 0xc2, 0xc3: // nil, false, true
			case 0xc4, 0xd9: // bin8, str8
				n, pos, err = readLen(b, pos, 1)
				skip = n
			case 0xc5, 0xda: // bin16, str16
				n, pos, err = readLen(b, pos, 2)
				skip = n
			case 0xc6, 0xdb: // bin32, str32
				n, pos, err = readLen(b, pos, 4)
				skip = n
			case 0xc7: // ext8: length, type, data
				n, pos, err = readLen(b, pos, 1)
				skip = n + 1
			case 0xc8: // ext16
				n, pos, err = readLen(b, pos, 2)
				skip = n + 1
			case 0xc9: // ext32
				n, pos, err = readLen(b, pos, 4)
				skip = n + 1
			case 0xca: // float32
				skip = 4
			case 0xcb: // float64
				skip = 8
			case 0xcc, 0xd0: // uint8, int8
				skip = 1
			case 0xcd, 0xd1: // uint16, int16
				skip = 2
			case 0xce, 0xd2: // uint32, int32
				skip = 4
			case 0xcf, 0xd3: // uint64, int64
				skip = 8
			case 0xd4: // fixext1: type, data
				skip = 2
			case 0xd5: // fixext2
				skip = 3
			case 0xd6: // fixext4
				skip = 5
			case 0xd7: // fixext8
				skip = 9
			case 0xd8: // fixext16
				skip = 17
			case 0xdc: // array16
				n, pos, err = readLen(b, pos, 2)
				items, isCon = n, true
			case 0xdd: // array32
				n, pos, err = readLen(b, pos, 4)
				items, isCon = n, true
			case 0xde: // map16
				n, pos, err = readLen(b, pos, 2)
				items, isCon = 2*n, true
			case 0xdf: // map32
				n, pos, err = readLen(b, pos, 4)
				items, isCon = 2*n, true
			default: // 0xc1 is never used
				return fmt.Errorf("msgpack: invalid code %#x at offset %d", c, pos-1)
			}
			if err != nil {
				return err
			}
		}
		rest := uint64(len(b) - pos)
		if skip > rest {
			return errMsgpackTruncated
		}
		pos += int(skip)
		if !isCon || items == 0 {
			// An empty container still counts toward the depth.
			if isCon && len(pending)+1 > maxDepth {
				return errMsgpackDepth(maxDepth)
			}
			continue
		}
		// Each value takes at least one byte.
		if items > rest {
			return errMsgpackLength
		}
		if len(pending)+1 > maxDepth {
			return errMsgpackDepth(maxDepth)
		}
		pending = append(pending, left)
		left = items
	}
	if pos != len(b) {
		return errMsgpackTrailing
	}
	return nil
}

func errMsgpackDepth(max int) error {
	return fmt.Errorf("msgpack: nesting deeper than %d", max)
}

// readLen reads a big-endian length of size bytes at b[pos:].
func readLen(b []byte, pos, size int) (uint64, int, error) {
	if len(b)-pos < size {
		return 0, pos, errMsgpackTruncated
	}
	var n uint64
	switch size {
	case 1:
		n = uint64(b[pos])
	case 2:
		n = uint64(binary.BigEndian.Uint16(b[pos:]))
	default:
		n = uint64(binary.BigEndian.Uint32(b[pos:]))
	}
	return n, pos + size, nil
}
