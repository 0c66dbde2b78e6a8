package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
)

// The consumption log, file consumed.log, records each message the
// application takes from the mailbox, before Receive returns it. It is
// memory-mapped, so a record costs a few stores to memory and survives a
// crash of the process at once (the operating system holds the page);
// it reaches the disk with the fsync policy's next sync of the database,
// when the records are folded into a checkpoint there.
//
// The file has two halves of logHalf bytes. The active half takes new
// records; each commit of the database switches halves and writes the
// state the records of the old half describe as a checkpoint, with the
// old half's generation (meta/cgen). At open, the records of every half
// whose generation is newer than the checkpoint's are replayed.
//
//	half:   magic "slcclog1" (8) | generation (8) | CRC-32C of the 16 (4) | 0 (12)
//	record: seq (8) | instance (8) | sender number (4) | CRC-32C (4)
//
// A record's CRC covers its half's generation and its first 20 bytes, so
// records left from an older use of the half, or torn by a crash in the
// middle of a write, end the replay of that half.
const (
	logHalf    = 512 << 10
	logHeader  = 32
	logEntry   = 24
	logEntries = (logHalf - logHeader) / logEntry
	logMagic   = "slcclog1"
	logName    = "consumed.log"
)

type consumedLog struct {
	r      region
	active int    // half taking records
	gen    uint64 // its generation
	n      int    // records in it
}

// region is the mapped file.
type region interface {
	bytes() []byte
	// wrote makes b[off:off+n] reach the file (a no-op when mapped).
	wrote(off, n int) error
	sync() error
	close() error
}

func openLog(path string) (*consumedLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.Size() != 2*logHalf {
		if fi.Size() != 0 {
			f.Close()
			return nil, fmt.Errorf("%s has %d bytes, want %d", logName, fi.Size(), 2*logHalf)
		}
		if err := f.Truncate(2 * logHalf); err != nil {
			f.Close()
			return nil, err
		}
	}
	r, err := mapFile(f, 2*logHalf)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &consumedLog{r: r}, nil
}

func (l *consumedLog) half(i int) []byte { return l.r.bytes()[i*logHalf : (i+1)*logHalf] }

// halfGen returns the generation of half i, or 0 if its header is not valid.
func (l *consumedLog) halfGen(i int) uint64 {
	h := l.half(i)
	if string(h[:8]) != logMagic || crc32.Checksum(h[:16], castagnoli) != binary.BigEndian.Uint32(h[16:]) {
		return 0
	}
	return binary.BigEndian.Uint64(h[8:])
}

// entryCRC is the CRC of a record of half h: of the half's generation,
// as its header holds it (big-endian), then of the record's 20 bytes.
// Both are read where they are: a copy on the stack would escape
// through the CRC function, one allocation per record.
func entryCRC(h, e []byte) uint32 {
	return crc32.Update(crc32.Checksum(h[8:16], castagnoli), castagnoli, e[:20])
}

// replay calls fn for every valid record of the halves newer than after,
// oldest first. It returns the newest generation found.
func (l *consumedLog) replay(after uint64, fn func(idx uint32, inst, seq uint64)) uint64 {
	g0, g1 := l.halfGen(0), l.halfGen(1)
	order := []int{0, 1}
	if g1 < g0 {
		order = []int{1, 0}
	}
	newest := max(g0, g1, after)
	for _, i := range order {
		gen := l.halfGen(i)
		if gen <= after {
			continue
		}
		h := l.half(i)
		for off := logHeader; off+logEntry <= logHalf; off += logEntry {
			e := h[off : off+logEntry]
			if entryCRC(h, e) != binary.BigEndian.Uint32(e[20:]) {
				break
			}
			fn(binary.BigEndian.Uint32(e[16:]), binary.BigEndian.Uint64(e[8:]), binary.BigEndian.Uint64(e))
		}
	}
	return newest
}

// start makes half i active with generation gen, empty.
func (l *consumedLog) start(i int, gen uint64) error {
	h := l.half(i)
	// Invalidate the first record slot before the header names the new
	// generation, so no stale record of an equal generation can match.
	clear(h[logHeader : logHeader+logEntry])
	copy(h, logMagic)
	binary.BigEndian.PutUint64(h[8:], gen)
	binary.BigEndian.PutUint32(h[16:], crc32.Checksum(h[:16], castagnoli))
	clear(h[20:logHeader])
	l.active, l.gen, l.n = i, gen, 0
	return l.r.wrote(i*logHalf, logHeader+logEntry)
}

// add records one consumption. It reports false when the active half is
// full (nothing is written then).
func (l *consumedLog) add(idx uint32, inst, seq uint64) (bool, error) {
	if l.n >= logEntries {
		return false, nil
	}
	off := logHeader + l.n*logEntry
	h := l.half(l.active)
	e := h[off : off+logEntry]
	binary.BigEndian.PutUint64(e, seq)
	binary.BigEndian.PutUint64(e[8:], inst)
	binary.BigEndian.PutUint32(e[16:], idx)
	binary.BigEndian.PutUint32(e[20:], entryCRC(h, e))
	l.n++
	return true, l.r.wrote(l.active*logHalf+off, logEntry)
}

// flip makes the other half active with the next generation and returns
// the generation of the half it left.
func (l *consumedLog) flip() (uint64, error) {
	old := l.gen
	return old, l.start(1-l.active, old+1)
}

func (l *consumedLog) close() error {
	if l == nil || l.r == nil {
		return nil
	}
	err := l.r.close()
	l.r = nil
	return err
}

var errLogFull = errors.New("store: consumption log full")
