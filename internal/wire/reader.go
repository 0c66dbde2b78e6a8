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
// keeps them: Retain tells the Reader never to overwrite the bytes handed
// out so far (the next Fill starts a fresh buffer), and Hold keeps one
// payload until it is released (Lease.Release), after which its buffer,
// once every payload held from it is released, is read into again. A frame
// larger than the buffer is read straight into a pooled buffer of its own
// (GetLarge), which goes back to the pool at the next Fill unless it was
// retained or held.
//
// The header of every frame is checked against Version and MaxPayload
// before its payload is read, so a hostile length never causes an
// allocation. A Reader is used by one goroutine at a time.
type Reader struct {
	r          io.Reader
	buf        []byte
	start, end int
	retained   bool   // payloads of buf are kept: Retain or Hold
	pinned     bool   // Retain: buf is never reused
	lease      *Lease // counts the payloads held from buf, or nil
	held       uint32 // payloads held from buf
	pooled     bool   // buf is a GetLarge buffer holding one frame
	afterLarge bool   // the last frame was large: read the next header alone
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

// Retain marks every payload returned so far as owned by the caller, for
// good: their buffer is never read into again.
func (fr *Reader) Retain() { fr.retained, fr.pinned = true, true }

// Hold marks the payload Buffered returned last as kept by the caller and
// returns the lease of the buffer it lies in and its number there. The
// buffer is read into again only after the Reader has left it and every
// payload held from it has been released with l.Release(i); a payload
// never released keeps its buffer from reuse, and the garbage collector
// has it. When the buffer cannot count more payloads (it cannot hold more
// frames than that), Hold returns a nil lease and the payload is kept as
// with Retain.
func (fr *Reader) Hold() (l *Lease, i uint32) {
	fr.retained = true
	if fr.lease == nil {
		fr.lease = newLease(fr.buf, fr.pooled)
	}
	if int(fr.held/64) >= len(fr.lease.rel) {
		fr.pinned = true
		return nil, 0
	}
	fr.held++
	return fr.lease, fr.held - 1
}

// leave lets go of buf, which the Reader reads into no more: its lease
// closes, so that the last Release gives it back; with no payload kept, it
// goes back to its pool at once; with payloads retained, it is left to the
// garbage collector.
func (fr *Reader) leave() {
	switch {
	case fr.pinned:
	case fr.lease != nil:
		fr.lease.close(fr.held)
	case fr.retained:
	case fr.pooled:
		PutLarge(fr.buf)
	case fr.buf != nil:
		putRegular(fr.buf)
	}
	fr.retained, fr.pinned, fr.lease, fr.held = false, false, nil, 0
}

// replace moves the incomplete frame at the head of the buffer to a new
// buffer of n bytes and leaves the old one.
func (fr *Reader) replace(n int) {
	nb := getRegular(n)
	avail := copy(nb, fr.buf[fr.start:fr.end])
	fr.leave()
	fr.buf, fr.start, fr.end = nb, 0, avail
}

// leaveLarge returns to the regular buffer after a frame that had a
// pooled buffer of its own, which goes back to the pool unless a payload
// in it was retained or held.
func (fr *Reader) leaveLarge() {
	if fr.start != fr.end {
		// Cannot happen (a large buffer holds exactly one frame); keep
		// the bytes and let the collector have the buffer.
		fr.pooled, fr.retained, fr.pinned = false, true, true
		return
	}
	fr.leave()
	fr.buf, fr.start, fr.end, fr.spare, fr.pooled = fr.spare, 0, 0, nil, false
	fr.afterLarge = true
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
	// After a large frame the next is likely large too: read its header
	// alone, so that its body goes straight into a buffer of its own
	// instead of being read into this one and copied there.
	headerOnly := fr.afterLarge && avail < HeaderLen
	fr.afterLarge = headerOnly
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
		fr.replace(want)
	case fr.buf != nil && fr.start+need <= len(fr.buf) && room >= min(minRead, len(fr.buf)/4):
	case fr.buf != nil && !fr.retained && len(fr.buf) >= want && len(fr.buf) <= 2*want:
		copy(fr.buf, fr.buf[fr.start:fr.end])
		fr.start, fr.end = 0, avail
	default:
		fr.replace(want)
	}
	dst := fr.buf[fr.end:]
	if headerOnly {
		dst = dst[:HeaderLen-avail]
	}
	n, err := fr.r.Read(dst)
	fr.end += n
	switch {
	case headerOnly:
		// A header's read says nothing of the buffer size wanted.
	case n == len(dst) && fr.cur < fr.size:
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
	if fr.retained {
		fr.leave()
	} else {
		fr.spare = fr.buf
	}
	fr.buf, fr.start, fr.end, fr.pooled = nb, 0, need, true
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
