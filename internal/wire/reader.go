package wire

import (
	"io"
)

// DefaultReadBuffer is the reader's buffer size when none is given.
const DefaultReadBuffer = 64 << 10

// minRead is the least free space worth a read call; with less, the
// reader moves to a fresh or compacted buffer first.
const minRead = 2 << 10

// minBuf is the buffer an idle connection keeps. The buffer grows
// fourfold whenever a read fills it, up to the Reader's size, and halves
// after reads that use little of it: a connection that carries bulk data
// reads in large chunks, and one that goes idle gives its memory back.
const minBuf = 4 << 10

// Reader splits a byte stream into frames.
//
// It reads in large chunks and hands out payloads that point into its
// buffer, so parsing a batch of small frames costs no copies and no
// allocations. Payloads stay valid until the next Fill unless the caller
// calls Retain, which tells the Reader never to overwrite the bytes handed
// out so far (the next Fill starts a fresh buffer). A frame larger than the
// buffer is read straight into a pooled buffer of its own (GetLarge), which
// goes back to the pool at the next Fill unless it was retained; TakeLarge
// hands it over to the caller instead.
//
// The header of every frame is checked against Version and MaxPayload
// before its payload is read, so a hostile length never causes an
// allocation. A Reader is used by one goroutine at a time.
type Reader struct {
	r          io.Reader
	buf        []byte
	start, end int
	retained   bool
	pooled     bool   // buf is a GetLarge buffer holding one frame
	spare      []byte // the regular buffer, set aside while buf is pooled
	size       int    // the largest buffer
	cur        int    // the buffer size wanted now, between minBuf and size

	// Version is the negotiated protocol version every frame must carry.
	Version uint8
	// MaxPayload is the largest payload accepted.
	MaxPayload uint32
}

// NewReader returns a Reader with a buffer of size bytes (DefaultReadBuffer
// when size is not positive). Version and MaxPayload start at the values
// for the hello exchange.
func NewReader(r io.Reader, size int) *Reader {
	if size <= 0 {
		size = DefaultReadBuffer
	}
	return &Reader{r: r, size: size, cur: min(size, minBuf), Version: MaxVersion, MaxPayload: MaxHello}
}

// Buffered returns the next frame if it is complete in the buffer, without
// reading. ok is false when more bytes are needed.
func (fr *Reader) Buffered() (h Header, payload []byte, ok bool, err error) {
	avail := fr.end - fr.start
	if avail < HeaderLen {
		return Header{}, nil, false, nil
	}
	h, err = ParseHeader(fr.buf[fr.start:fr.end], fr.Version, fr.MaxPayload)
	if err != nil {
		return h, nil, false, err
	}
	total := HeaderLen + int(h.Length)
	if avail < total {
		return h, nil, false, nil
	}
	payload = fr.buf[fr.start+HeaderLen : fr.start+total : fr.start+total]
	fr.start += total
	return h, payload, true, nil
}

// Retain marks every payload returned so far as owned by the caller.
func (fr *Reader) Retain() { fr.retained = true }

// TakeLarge hands over the buffer that holds the frame Buffered returned
// last, when that frame was too large for the Reader's buffer and was read
// into a pooled buffer of its own. The caller owns the buffer from then on
// and may give it back with PutLarge once nothing refers to it. TakeLarge
// returns nil for any other frame.
func (fr *Reader) TakeLarge() []byte {
	if !fr.pooled || fr.retained || fr.start != fr.end {
		return nil
	}
	fr.retained = true
	return fr.buf
}

// leaveLarge returns to the regular buffer after a frame that had a
// pooled buffer of its own, which goes back to the pool unless a payload
// in it was retained (or taken).
func (fr *Reader) leaveLarge() {
	fr.pooled = false
	if fr.start != fr.end {
		// Cannot happen (a large buffer holds exactly one frame); keep
		// the bytes and let the collector have the buffer.
		fr.retained = true
		return
	}
	if !fr.retained {
		PutLarge(fr.buf)
	}
	fr.buf, fr.start, fr.end, fr.retained, fr.spare = fr.spare, 0, 0, false, nil
}

// Pending reports how many bytes of an incomplete frame are buffered.
func (fr *Reader) Pending() int { return fr.end - fr.start }

// Fill reads more bytes from the underlying reader: one Read call, or, when
// the incomplete frame at the head of the buffer does not fit in the
// buffer, as many as it takes to complete that frame.
func (fr *Reader) Fill() error {
	if fr.pooled {
		fr.leaveLarge()
	}
	avail := fr.end - fr.start
	need := HeaderLen
	if avail >= HeaderLen {
		h, err := ParseHeader(fr.buf[fr.start:fr.end], fr.Version, fr.MaxPayload)
		if err != nil {
			return err
		}
		need = HeaderLen + int(h.Length)
	}
	if need > fr.size {
		return fr.fillLarge(need)
	}
	// Read into the space after the buffered bytes when the incomplete
	// frame fits there: payloads handed out (retained or not) lie before
	// it and are not touched. Otherwise move the incomplete frame to the
	// front, or, when payloads before it are retained or the buffer is
	// the wrong size, to a new buffer.
	want := max(fr.cur, need)
	room := len(fr.buf) - fr.end
	switch {
	case fr.buf != nil && avail == 0 && len(fr.buf) > 2*want:
		// Idle after a burst: let the large buffer go.
		fr.buf, fr.start, fr.end, fr.retained = make([]byte, want), 0, 0, false
	case fr.buf != nil && fr.start+need <= len(fr.buf) && room >= min(minRead, len(fr.buf)/4):
	case fr.buf != nil && !fr.retained && len(fr.buf) >= want && len(fr.buf) <= 2*want:
		copy(fr.buf, fr.buf[fr.start:fr.end])
		fr.start, fr.end = 0, avail
	default:
		nb := make([]byte, want)
		copy(nb, fr.buf[fr.start:fr.end])
		fr.buf, fr.start, fr.end, fr.retained = nb, 0, avail, false
	}
	space := len(fr.buf) - fr.end
	n, err := fr.r.Read(fr.buf[fr.end:])
	fr.end += n
	switch {
	case n == space && fr.cur < fr.size:
		fr.cur = min(fr.cur*4, fr.size)
	case n < fr.cur/16 && fr.cur > minBuf:
		fr.cur = max(fr.cur/2, minBuf)
	}
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// fillLarge reads a whole frame of need bytes into a pooled buffer of its
// own. The regular buffer is set aside for the frames after it, unless
// payloads in it are retained.
func (fr *Reader) fillLarge(need int) error {
	nb := GetLarge(need)
	n := copy(nb, fr.buf[fr.start:fr.end])
	if _, err := io.ReadFull(fr.r, nb[n:]); err != nil {
		PutLarge(nb)
		if err == io.EOF && n > 0 {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if !fr.retained && fr.buf != nil {
		fr.spare = fr.buf
	}
	fr.buf, fr.start, fr.end, fr.retained, fr.pooled = nb, 0, need, false, true
	return nil
}

// ReadFrame blocks until one whole frame has arrived and returns it. It is
// meant for the handshake; the data path uses Buffered and Fill.
func (fr *Reader) ReadFrame() (Header, []byte, error) {
	for {
		h, p, ok, err := fr.Buffered()
		if err != nil || ok {
			return h, p, err
		}
		if err := fr.Fill(); err != nil {
			if err == io.EOF && fr.Pending() > 0 {
				err = io.ErrUnexpectedEOF
			}
			return Header{}, nil, err
		}
	}
}

// SetSource replaces the underlying reader and keeps the bytes already
// buffered, for example to add a deadline to every read once the
// handshake is over.
func (fr *Reader) SetSource(r io.Reader) { fr.r = r }
