package serpy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Mode is a serpy (v1) sending mode. The receiver learns it from a
// SETMODE control block before the first block of that mode.
type Mode int

// The serpy v1 modes. Modes 4 and 5 carry Python pickles, which this
// package refuses in both directions: unpickling runs arbitrary code.
const (
	ModePlain     Mode = 0 // the bytes as they are, no acknowledgement
	ModeAck       Mode = 1 // the bytes, then EOT; Send waits for ACKEOT
	ModeB85       Mode = 2 // base85 (RFC 1924 alphabet), no acknowledgement
	ModeB85Ack    Mode = 3 // base85, then EOT; Send waits for ACKEOT
	ModePickle    Mode = 4 // refused
	ModePickleAck Mode = 5 // refused
)

func (m Mode) String() string {
	switch m {
	case ModePlain:
		return "mode 0 (plain)"
	case ModeAck:
		return "mode 1 (plain, acknowledged)"
	case ModeB85:
		return "mode 2 (base85)"
	case ModeB85Ack:
		return "mode 3 (base85, acknowledged)"
	case ModePickle:
		return "mode 4 (pickle)"
	case ModePickleAck:
		return "mode 5 (pickle, acknowledged)"
	}
	return "mode " + strconv.Itoa(int(m))
}

// acknowledged reports whether the mode waits for ACKEOT.
func (m Mode) acknowledged() bool { return m == ModeAck || m == ModeB85Ack }

// The bytes of serpy v1 framing.
const (
	UnitSeparator = 0x1F // ends every block
	EOT           = 0x04 // ends a message in modes 1 and 3
	ControlByte   = 0x01 // starts a control block
)

// Control blocks, without the final unit separator.
var (
	ctlSetMode = []byte("\x01SETMODE") // followed by the mode's digit
	ctlAckMode = []byte("\x01ACKMODCG")
	ctlAckEOT  = []byte("\x01ACKEOT!!")
)

// Errors of serpy v1.
var (
	// ErrPickleRefused reports modes 4 and 5, or a Go value that serpy
	// would have pickled.
	ErrPickleRefused = errors.New("serpy: pickle modes (4 and 5) are refused: unpickling data from the network runs arbitrary code")
	// ErrUnsafeData reports data that the mode cannot carry without
	// being mangled or lost by the receiver.
	ErrUnsafeData = errors.New("serpy: data cannot be sent in this mode")
	// ErrBadControl reports a control block the protocol does not have,
	// or a SETMODE with no valid mode.
	ErrBadControl = errors.New("serpy: bad control block")
	// ErrBadMessage reports a message of mode 1 or 3 with more than one
	// EOT, or base85 that does not decode.
	ErrBadMessage = errors.New("serpy: malformed message")
)

// EncodeBlock returns the bytes serpy v1 sends for data in mode m: the
// block and its unit separator (with an EOT before it in modes 1 and 3,
// and the data in base85 in modes 2 and 3). It refuses what the receiver
// would mangle or drop: in modes 0 and 1 data containing 0x1F, data
// starting with 0x01 (taken for a control block) and, in mode 1, data
// containing 0x04; and empty data in modes 0 and 2 (an empty block is
// skipped by the receiver).
func EncodeBlock(data []byte, m Mode) ([]byte, error) {
	switch m {
	case ModePlain, ModeAck:
		if len(data) == 0 && m == ModePlain {
			return nil, fmt.Errorf("%w: an empty block is dropped by the receiver in %v", ErrUnsafeData, m)
		}
		if i := bytes.IndexByte(data, UnitSeparator); i >= 0 {
			return nil, fmt.Errorf("%w: byte %d is 0x1F, the block separator of %v; send bytes in mode 2 or 3", ErrUnsafeData, i, m)
		}
		if len(data) > 0 && data[0] == ControlByte {
			return nil, fmt.Errorf("%w: data starting with 0x01 is taken for a control block in %v", ErrUnsafeData, m)
		}
		if m == ModeAck {
			if i := bytes.IndexByte(data, EOT); i >= 0 {
				return nil, fmt.Errorf("%w: byte %d is 0x04, the end of message of %v; use mode 3", ErrUnsafeData, i, m)
			}
			out := make([]byte, 0, len(data)+2)
			return append(append(out, data...), EOT, UnitSeparator), nil
		}
		out := make([]byte, 0, len(data)+1)
		return append(append(out, data...), UnitSeparator), nil
	case ModeB85, ModeB85Ack:
		enc := B85Encode(data)
		if m == ModeB85Ack {
			return append(enc, EOT, UnitSeparator), nil
		}
		if len(enc) == 0 {
			return nil, fmt.Errorf("%w: empty data is an empty block in %v, which the receiver drops; use mode 3", ErrUnsafeData, m)
		}
		return append(enc, UnitSeparator), nil
	case ModePickle, ModePickleAck:
		return nil, ErrPickleRefused
	}
	return nil, fmt.Errorf("%w: %v does not exist", ErrUnsafeData, m)
}

// SetModeBlock returns the control block that announces mode m.
func SetModeBlock(m Mode) []byte {
	b := append([]byte{}, ctlSetMode...)
	return append(b, byte('0'+m), UnitSeparator)
}

// Python's sendData converts its argument before sending; ToBytesV1 does
// the same for Go values: a string is sent as its bytes, an integer as its
// decimal digits, a float as Python's str(float) (see FloatRepr), and
// []byte switches the mode to base85 (0 becomes 2, 1 becomes 3), as serpy
// does "to ensure control characters are not met". Other types are what
// serpy would pickle: they are refused with ErrPickleRefused.
func ToBytesV1(v any, m Mode) ([]byte, Mode, error) {
	switch x := v.(type) {
	case []byte:
		switch m {
		case ModePlain, ModePickle:
			m = ModeB85
		case ModeAck, ModePickleAck:
			m = ModeB85Ack
		}
		return x, m, nil
	case string:
		return []byte(x), m, nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), m, nil
	case int8:
		return strconv.AppendInt(nil, int64(x), 10), m, nil
	case int16:
		return strconv.AppendInt(nil, int64(x), 10), m, nil
	case int32:
		return strconv.AppendInt(nil, int64(x), 10), m, nil
	case int64:
		return strconv.AppendInt(nil, x, 10), m, nil
	case uint:
		return strconv.AppendUint(nil, uint64(x), 10), m, nil
	case uint8:
		return strconv.AppendUint(nil, uint64(x), 10), m, nil
	case uint16:
		return strconv.AppendUint(nil, uint64(x), 10), m, nil
	case uint32:
		return strconv.AppendUint(nil, uint64(x), 10), m, nil
	case uint64:
		return strconv.AppendUint(nil, x, 10), m, nil
	case float32:
		return []byte(FloatRepr(float64(x))), m, nil
	case float64:
		return []byte(FloatRepr(x)), m, nil
	}
	return nil, m, fmt.Errorf("%w: serpy pickles a %T", ErrPickleRefused, v)
}

// BlockReader splits a serpy v1 stream into blocks.
type BlockReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewBlockReader returns a reader of blocks from r, each at most max
// bytes (DefaultMaxFrame if max <= 0).
func NewBlockReader(r io.Reader, max int) *BlockReader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &BlockReader{r: br, max: max}
}

// ReadBlock returns the next non-empty block, without its separator. The
// slice is valid until the next call. Empty blocks are skipped, as serpy
// does. io.EOF means the stream ended between blocks; io.ErrUnexpectedEOF
// that it ended inside one (serpy drops such a partial block).
func (br *BlockReader) ReadBlock() ([]byte, error) {
	for {
		br.buf = br.buf[:0]
		for {
			chunk, err := br.r.ReadSlice(UnitSeparator)
			if len(br.buf)+len(chunk) > br.max+1 {
				return nil, fmt.Errorf("%w: block longer than %d bytes", ErrFrameTooLarge, br.max)
			}
			br.buf = append(br.buf, chunk...)
			if err == nil {
				break
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF && len(br.buf) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		block := br.buf[:len(br.buf)-1]
		if len(block) > 0 {
			return block, nil
		}
	}
}

// v1Event is what one received block means.
type v1Event int

const (
	v1None    v1Event = iota // nothing to do (part of a message)
	v1Data                   // a message: deliver it
	v1DataAck                // a message of an acknowledged mode: deliver it and send ACKEOT
	v1SetMode                // the peer switched mode: send ACKMODCG
	v1AckMode                // the peer acknowledged our SETMODE
	v1AckEOT                 // the peer acknowledged one of our messages
)

// v1Receiver is the receiving half of a serpy v1 connection: the peer's
// current mode and the part of an acknowledged message received so far.
// It has no I/O, so it can be tested and fuzzed on its own.
type v1Receiver struct {
	mode    Mode
	pending []byte
	max     int
}

// block interprets one block. It returns the event and, for v1Data and
// v1DataAck, the message (a new slice).
func (r *v1Receiver) block(b []byte) (v1Event, []byte, error) {
	if len(b) > 0 && b[0] == ControlByte {
		switch {
		case bytes.HasPrefix(b, ctlSetMode):
			// serpy reads the mode from the block's last character.
			if len(b) != len(ctlSetMode)+1 || b[len(b)-1] < '0' || b[len(b)-1] > '9' {
				return 0, nil, fmt.Errorf("%w: %q", ErrBadControl, b)
			}
			m := Mode(b[len(b)-1] - '0')
			switch {
			case m == ModePickle || m == ModePickleAck:
				return 0, nil, fmt.Errorf("%w (the peer switched to %v)", ErrPickleRefused, m)
			case m > ModePickleAck:
				return 0, nil, fmt.Errorf("%w: SETMODE to %v, which does not exist", ErrBadControl, m)
			}
			r.mode = m
			return v1SetMode, nil, nil
		case bytes.Equal(b, ctlAckEOT):
			return v1AckEOT, nil, nil
		case bytes.Equal(b, ctlAckMode):
			return v1AckMode, nil, nil
		}
		return 0, nil, fmt.Errorf("%w: %q", ErrBadControl, b[:min(len(b), 32)])
	}
	switch r.mode {
	case ModePlain:
		return v1Data, bytes.Clone(b), nil
	case ModeB85:
		msg, err := B85Decode(b)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		return v1Data, msg, nil
	case ModeAck, ModeB85Ack:
		if len(r.pending)+len(b) > r.limit() {
			return 0, nil, fmt.Errorf("%w: message longer than %d bytes", ErrFrameTooLarge, r.limit())
		}
		r.pending = append(r.pending, b...)
		i := bytes.IndexByte(r.pending, EOT)
		if i < 0 {
			return v1None, nil, nil
		}
		if bytes.IndexByte(r.pending[i+1:], EOT) >= 0 {
			return 0, nil, fmt.Errorf("%w: more than one EOT in a block", ErrBadMessage)
		}
		msg := bytes.Clone(r.pending[:i])
		r.pending = append(r.pending[:0], r.pending[i+1:]...)
		if r.mode == ModeB85Ack {
			dec, err := B85Decode(msg)
			if err != nil {
				return 0, nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
			}
			msg = dec
		}
		return v1DataAck, msg, nil
	}
	return 0, nil, fmt.Errorf("%w: data in %v", ErrBadControl, r.mode)
}

func (r *v1Receiver) limit() int {
	if r.max <= 0 {
		return DefaultMaxFrame
	}
	return r.max
}
