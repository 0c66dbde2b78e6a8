package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/slc-go/slc/peer"
)

// Database layout (bbolt, file slc.db). Every value ends with the
// CRC-32C of the bytes before it, so damage is found when the value is
// read, not only when bbolt's structure breaks.
//
//	meta/format            "slc-store/1"
//	meta/name              the node's name
//	meta/instance          uint64: the node's instance ID
//	meta/ids               uint64: message IDs up to this are reserved
//	meta/cgen              uint64: consumption-log generations folded in
//	out/<peer>/addr        the address to dial the peer at ("" if it dials)
//	out/<peer>/rel         acked, partial, chunks (3 x uint64): released
//	out/<peer>/r<n>        frames: {seq u64, chunk u64, len u32, frame}...
//	in/<sender>/idx        uint32: the sender's number in the consumption log
//	in/<sender>/dlv        instance u64, seq u64: the delivered watermark
//	in/<sender>/r<n>       instance u64, messages: {seq u64, serializer
//	                       name (u8 length), type (u8 length), raw (u32
//	                       length)}...; n counts over all senders, in
//	                       arrival order
//	in/<sender>/cons<inst> w u64, count u32, count x seq u64: consumed
//	in/<sender>/asm        instance, seq, serializer u8, chunks, type:
//	                       a chunked message partly received
//	in/<sender>/c<i>       chunk i of that message
//	damaged/<path>         values a salvaging Open moved aside
//
// A commit writes the frames or messages it holds for a peer as records
// of at most recordSize bytes (a larger single entry has one of its own).
const formatV1 = "slc-store/1"

var (
	bMeta    = []byte("meta")
	bOut     = []byte("out")
	bIn      = []byte("in")
	bDamaged = []byte("damaged")

	kFormat   = []byte("format")
	kName     = []byte("name")
	kInstance = []byte("instance")
	kIDs      = []byte("ids")
	kCGen     = []byte("cgen")
	kAddr     = []byte("addr")
	kRel      = []byte("rel")
	kIdx      = []byte("idx")
	kDlv      = []byte("dlv")
	kAsm      = []byte("asm")
)

const (
	recPrefix   = 'r'
	consPrefix  = "cons"
	chunkPrefix = 'c'
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// seal appends the CRC-32C of b to b.
func seal(b []byte) []byte { return sealFrom(b, 0) }

// sealFrom appends the CRC of b[start:] to b: the value b[start:] is
// then sealed.
func sealFrom(b []byte, start int) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// unseal checks and strips the CRC of a value.
func unseal(v []byte) ([]byte, bool) {
	if len(v) < 4 {
		return nil, false
	}
	p := v[:len(v)-4]
	return p, crc32.Checksum(p, castagnoli) == binary.BigEndian.Uint32(v[len(v)-4:])
}

func key(prefix byte, n uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefix
	binary.BigEndian.PutUint64(k[1:], n)
	return k
}

func consKey(inst uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(consPrefix), inst)
}

func sealedU64s(vs ...uint64) []byte {
	b := make([]byte, 0, 8*len(vs)+4)
	for _, v := range vs {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return seal(b)
}

func readU64s(v []byte, n int) ([]uint64, bool) {
	p, ok := unseal(v)
	if !ok || len(p) != 8*n {
		return nil, false
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = binary.BigEndian.Uint64(p[8*i:])
	}
	return out, true
}

// --- outbound records ---

const frameOverhead = 20 // seq, chunk, length

// appendFrame appends one frame entry to an outbound record being built.
func appendFrame(b []byte, seq, chunk uint64, hdr, body []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, chunk)
	b = binary.BigEndian.AppendUint32(b, uint32(len(hdr)+len(body)))
	b = append(b, hdr...)
	return append(b, body...)
}

// parseFrames decodes an outbound record (without its CRC).
func parseFrames(p []byte, fn func(seq, chunk uint64, frame []byte)) error {
	for len(p) > 0 {
		if len(p) < frameOverhead {
			return errors.New("truncated frame entry")
		}
		seq, chunk, n := binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:]), binary.BigEndian.Uint32(p[16:])
		p = p[frameOverhead:]
		if uint64(n) > uint64(len(p)) {
			return errors.New("frame entry overruns the record")
		}
		fn(seq, chunk, p[:n])
		p = p[n:]
	}
	return nil
}

// --- inbound records ---

// appendMessage appends one message to an inbound record being built.
func appendMessage(b []byte, m *peer.Message, serName string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(m.ID))
	b = append(b, byte(len(serName)))
	b = append(b, serName...)
	b = append(b, byte(len(m.Type)))
	b = append(b, m.Type...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Raw)))
	return append(b, m.Raw...)
}

// storedMessage is a message as an inbound record holds it.
type storedMessage struct {
	seq  uint64
	ser  string
	typ  string
	raw  []byte
	size int // bytes it takes in the record
}

// parseMessages decodes an inbound record (without its CRC).
func parseMessages(p []byte) (inst uint64, msgs []storedMessage, err error) {
	if len(p) < 8 {
		return 0, nil, errors.New("truncated record")
	}
	inst = binary.BigEndian.Uint64(p)
	p = p[8:]
	for len(p) > 0 {
		start := len(p)
		var m storedMessage
		if len(p) < 9 {
			return 0, nil, errors.New("truncated message")
		}
		m.seq = binary.BigEndian.Uint64(p)
		n := int(p[8])
		p = p[9:]
		if len(p) < n+1 {
			return 0, nil, errors.New("truncated serializer name")
		}
		m.ser, p = string(p[:n]), p[n:]
		n = int(p[0])
		p = p[1:]
		if len(p) < n+4 {
			return 0, nil, errors.New("truncated type name")
		}
		m.typ, p = string(p[:n]), p[n:]
		rl := binary.BigEndian.Uint32(p)
		p = p[4:]
		if uint64(rl) > uint64(len(p)) {
			return 0, nil, errors.New("message overruns the record")
		}
		m.raw, p = p[:rl], p[rl:]
		m.size = start - len(p)
		if m.seq == 0 || (len(msgs) > 0 && m.seq <= msgs[len(msgs)-1].seq) {
			return 0, nil, errors.New("message IDs out of order")
		}
		msgs = append(msgs, m)
	}
	return inst, msgs, nil
}

// --- partial messages ---

func encodeAsm(inst uint64, p *peer.Partial) []byte {
	b := binary.BigEndian.AppendUint64(nil, inst)
	b = binary.BigEndian.AppendUint64(b, p.Seq)
	b = append(b, p.Ser)
	b = binary.BigEndian.AppendUint64(b, p.Chunks)
	b = append(b, p.Type...)
	return seal(b)
}

func decodeAsm(v []byte) (inst uint64, p peer.Partial, ok bool) {
	b, ok := unseal(v)
	if !ok || len(b) < 25 {
		return 0, p, false
	}
	inst = binary.BigEndian.Uint64(b)
	p.Seq = binary.BigEndian.Uint64(b[8:])
	p.Ser = b[16]
	p.Chunks = binary.BigEndian.Uint64(b[17:])
	p.Type = string(b[25:])
	return inst, p, true
}

// --- consumption checkpoints ---

func encodeCons(w uint64, ooo []uint64) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 12+8*len(ooo)+4), w)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ooo)))
	for _, s := range ooo {
		b = binary.BigEndian.AppendUint64(b, s)
	}
	return seal(b)
}

func decodeCons(v []byte) (w uint64, ooo []uint64, ok bool) {
	b, ok := unseal(v)
	if !ok || len(b) < 12 {
		return 0, nil, false
	}
	w = binary.BigEndian.Uint64(b)
	n := binary.BigEndian.Uint32(b[8:])
	b = b[12:]
	if uint64(len(b)) != 8*uint64(n) {
		return 0, nil, false
	}
	ooo = make([]uint64, n)
	for i := range ooo {
		ooo[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	return w, ooo, true
}

// --- damage ---

// Damage is one part of a store that failed its checks.
type Damage struct {
	// Where names the part: "slc.db", "out/<peer>/r12", "in/<sender>/dlv",
	// "consumed.log", ...
	Where string
	// What went wrong.
	What string
	// Loses says what is lost if the part is set aside: messages that
	// will not be re-sent, or messages that may be delivered again.
	Loses string
}

func (d Damage) String() string {
	s := d.Where + ": " + d.What
	if d.Loses != "" {
		s += " (" + d.Loses + ")"
	}
	return s
}

// CorruptError reports a store that failed its checks at Open. Nothing in
// it was used or changed. It lists what is damaged and what is intact, so
// the user can decide: fix the disk, or open with Options.Salvage, which
// sets the damaged parts aside and keeps the rest.
type CorruptError struct {
	Dir    string
	Damage []Damage
	// Intact summarizes what passed the checks.
	Intact string
	// Fatal is set when the database itself cannot be read: nothing can
	// be salvaged from it by this version.
	Fatal bool
}

func (e *CorruptError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "store %s is damaged: ", e.Dir)
	for i, d := range e.Damage {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(e.Damage)-5)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(d.String())
	}
	if e.Fatal {
		b.WriteString(". Nothing can be recovered from the database file: move the directory aside to start a new store (its unacknowledged messages are then lost)")
	} else {
		fmt.Fprintf(&b, ". Intact: %s. Open with salvage (slc: --store-salvage) to set the damaged parts aside and keep the rest; `slc store inspect` shows the details", e.Intact)
	}
	return b.String()
}
