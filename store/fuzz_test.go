package store

import (
	"encoding/binary"
	"testing"
)

// FuzzRecords feeds arbitrary bytes to every decoder of the store's
// values and to the consumption log's replay: none may panic, and what
// they accept must encode back to the same bytes.
func FuzzRecords(f *testing.F) {
	f.Add(appendFrame(nil, 1, 0, []byte("h"), []byte("body")))
	f.Add(binary.BigEndian.AppendUint64(nil, 7))
	f.Add(encodeCons(5, []uint64{7, 9}))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseFrames(b, func(seq, chunk uint64, frame []byte) {})
		if inst, msgs, err := parseMessages(b); err == nil {
			out := binary.BigEndian.AppendUint64(nil, inst)
			for _, m := range msgs {
				out = binary.BigEndian.AppendUint64(out, m.seq)
				out = append(out, byte(len(m.ser)))
				out = append(out, m.ser...)
				out = append(out, byte(len(m.typ)))
				out = append(out, m.typ...)
				out = binary.BigEndian.AppendUint32(out, uint32(len(m.raw)))
				out = append(out, m.raw...)
			}
			if string(out) != string(b) {
				t.Fatalf("parseMessages accepted %x but it encodes as %x", b, out)
			}
		}
		if w, ooo, ok := decodeCons(b); ok && string(encodeCons(w, ooo)) != string(b) {
			t.Fatalf("decodeCons accepted %x", b)
		}
		decodeAsm(b)
		readU64s(b, 2)
		log := make([]byte, 2*logHalf)
		copy(log, b)
		copy(log[logHalf:], b)
		(&consumedLog{r: memRegion(log)}).replay(0, func(uint32, uint64, uint64) {})
	})
}
