package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/peer"
)

// loaded is what a store holds, as Open and Inspect read it.
type loaded struct {
	fresh               bool
	name                string
	instance, ids, cgen uint64
	out                 []*loadedOut
	in                  []*loadedIn
	damage              []Damage
	aside               []aside
	metaBad             bool
}

type loadedOut struct {
	id   peer.ID
	addr string
	rel  [3]uint64
	recs []loadedOutRec
}

type loadedOutRec struct {
	key    uint64
	frames []peer.StoredFrame
	size   int64
}

type loadedIn struct {
	id       peer.ID
	idx      uint32
	inst     uint64
	dlv      uint64
	cons     map[uint64]*consState
	asm      *asmState
	recs     []loadedInRec
	badIdx   bool
	asmBroke bool
}

type loadedInRec struct {
	key  uint64
	inst uint64
	msgs []storedMessage
}

// RestoredMessages are messages a previous run placed in the mailbox from
// one sender and the application had not consumed.
type RestoredMessages struct {
	From peer.ID
	Msgs []peer.Message
}

// RestoredInbox returns the messages a previous run had in its mailbox
// and the application had not consumed, in the order they arrived. The
// node places them back in its mailbox before it accepts new ones.
func (st *Store) RestoredInbox() []RestoredMessages { return st.restoredIn }

// load reads and checks the whole store.
func load(tx *bolt.Tx) *loaded {
	l := &loaded{}
	meta := tx.Bucket(bMeta)
	if meta == nil {
		l.fresh = true
		return l
	}
	bad := func(where, what, loses string) {
		l.damage = append(l.damage, Damage{Where: where, What: what, Loses: loses})
	}
	if v, ok := unseal(meta.Get(kFormat)); !ok || string(v) != formatV1 {
		bad("meta/format", fmt.Sprintf("not %q", formatV1), "")
		l.metaBad = true
		return l
	}
	if v, ok := unseal(meta.Get(kName)); ok {
		l.name = string(v)
	} else {
		bad("meta/name", "checksum mismatch", "the node's name")
		l.metaBad = true
	}
	for _, f := range []struct {
		k []byte
		p *uint64
	}{{kInstance, &l.instance}, {kIDs, &l.ids}, {kCGen, &l.cgen}} {
		if v, ok := readU64s(meta.Get(f.k), 1); ok {
			*f.p = v[0]
		} else {
			bad("meta/"+string(f.k), "checksum mismatch", "the node's identity and message counter")
			l.metaBad = true
		}
	}
	if l.metaBad {
		return l
	}
	if b := tx.Bucket(bOut); b != nil {
		b.ForEachBucket(func(k []byte) error {
			l.out = append(l.out, loadOut(b.Bucket(k), peer.ID(k), l))
			return nil
		})
	}
	if b := tx.Bucket(bIn); b != nil {
		b.ForEachBucket(func(k []byte) error {
			l.in = append(l.in, loadIn(b.Bucket(k), peer.ID(k), l))
			return nil
		})
	}
	return l
}

func (l *loaded) setAside(path [][]byte, k, v []byte, d Damage) {
	l.damage = append(l.damage, d)
	name := d.Where
	l.aside = append(l.aside, aside{path: path, key: append([]byte(nil), k...), val: append([]byte(nil), v...), name: name})
}

func loadOut(b *bolt.Bucket, id peer.ID, l *loaded) *loadedOut {
	o := &loadedOut{id: id}
	path := outBucketPath(id)
	where := func(k string) string { return "out/" + string(id) + "/" + k }
	if v := b.Get(kAddr); v != nil {
		if a, ok := unseal(v); ok {
			o.addr = string(a)
		} else {
			l.setAside(path, kAddr, v, Damage{Where: where("addr"), What: "checksum mismatch",
				Loses: "the address to dial " + string(id) + " at: its unacknowledged messages wait for it to connect"})
		}
	}
	if v := b.Get(kRel); v != nil {
		if r, ok := readU64s(v, 3); ok {
			o.rel = [3]uint64{r[0], r[1], r[2]}
		} else {
			l.setAside(path, kRel, v, Damage{Where: where("rel"), What: "checksum mismatch",
				Loses: "nothing: messages " + string(id) + " acknowledged are offered again and it drops them"})
		}
	}
	c := b.Cursor()
	for k, v := c.Seek([]byte{recPrefix}); k != nil && k[0] == recPrefix; k, v = c.Next() {
		if len(k) != 9 {
			continue
		}
		n := binary.BigEndian.Uint64(k[1:])
		p, ok := unseal(v)
		var frames []peer.StoredFrame
		var perr error
		if ok {
			perr = parseFrames(p, func(seq, chunk uint64, f []byte) {
				frames = append(frames, peer.StoredFrame{Seq: seq, Chunk: chunk, Bytes: append([]byte(nil), f...)})
			})
		}
		if !ok || perr != nil {
			what := "checksum mismatch"
			if perr != nil {
				what = perr.Error()
			}
			l.setAside(path, k, v, Damage{Where: where(fmt.Sprintf("r%d", n)), What: what,
				Loses: fmt.Sprintf("unacknowledged messages to %s in this record (%d bytes) are not re-sent", id, len(v))})
			continue
		}
		o.recs = append(o.recs, loadedOutRec{key: n, frames: frames, size: int64(len(p))})
	}
	return o
}

func loadIn(b *bolt.Bucket, id peer.ID, l *loaded) *loadedIn {
	s := &loadedIn{id: id, cons: map[uint64]*consState{}}
	path := inBucketPath(id)
	where := func(k string) string { return "in/" + string(id) + "/" + k }
	if v := b.Get(kIdx); v != nil {
		if p, ok := unseal(v); ok && len(p) == 4 {
			s.idx = binary.BigEndian.Uint32(p)
		} else {
			s.badIdx = true
			l.setAside(path, kIdx, v, Damage{Where: where("idx"), What: "checksum mismatch",
				Loses: "messages from " + string(id) + " consumed since the last checkpoint may be delivered again"})
		}
	}
	if v := b.Get(kDlv); v != nil {
		if r, ok := readU64s(v, 2); ok {
			s.inst, s.dlv = r[0], r[1]
		} else {
			l.setAside(path, kDlv, v, Damage{Where: where("dlv"), What: "checksum mismatch",
				Loses: "messages from " + string(id) + " it re-sends may be delivered again"})
		}
	}
	c := b.Cursor()
	for k, v := c.Seek([]byte(consPrefix)); k != nil && len(k) == len(consPrefix)+8 && string(k[:len(consPrefix)]) == consPrefix; k, v = c.Next() {
		inst := binary.BigEndian.Uint64(k[len(consPrefix):])
		w, ooo, ok := decodeCons(v)
		if !ok {
			l.setAside(path, k, v, Damage{Where: where(fmt.Sprintf("cons%d", inst)), What: "checksum mismatch",
				Loses: "messages from " + string(id) + " the application consumed may be delivered again"})
			continue
		}
		cs := &consState{w: w}
		for _, q := range ooo {
			if cs.ooo == nil {
				cs.ooo = map[uint64]struct{}{}
			}
			cs.ooo[q] = struct{}{}
		}
		s.cons[inst] = cs
	}
	if v := b.Get(kAsm); v != nil {
		inst, p, ok := decodeAsm(v)
		if ok {
			for i := uint64(0); i < p.Chunks; i++ {
				if _, cok := unseal(b.Get(key(chunkPrefix, i))); !cok {
					ok = false
					break
				}
			}
		}
		if ok {
			s.asm = &asmState{inst: inst, p: p, chunks: p.Chunks}
		} else {
			s.asmBroke = true
			l.setAside(path, kAsm, v, Damage{Where: where("asm"), What: "a partly received message fails its checks",
				Loses: "the chunked message " + string(id) + " was sending: its sender released the chunks this node had"})
		}
	}
	for k, v := c.Seek([]byte{recPrefix}); k != nil && k[0] == recPrefix; k, v = c.Next() {
		if len(k) != 9 {
			continue
		}
		n := binary.BigEndian.Uint64(k[1:])
		p, ok := unseal(v)
		var inst uint64
		var msgs []storedMessage
		var perr error
		if ok {
			inst, msgs, perr = parseMessages(p)
		}
		if !ok || perr != nil {
			what := "checksum mismatch"
			if perr != nil {
				what = perr.Error()
			}
			l.setAside(path, k, v, Damage{Where: where(fmt.Sprintf("r%d", n)), What: what,
				Loses: fmt.Sprintf("messages from %s in this record (%d bytes) that the application had not consumed", id, len(v))})
			continue
		}
		s.recs = append(s.recs, loadedInRec{key: n, inst: inst, msgs: msgs})
	}
	return s
}

// recover reads the store into st, checks it, and makes the first commit
// of this run: the ID reservation, the consumption state with the log
// folded in, and (when salvaging) the damaged values moved aside.
func (st *Store) recover(name string) error {
	var l *loaded
	err := guard(func() error {
		return st.db.View(func(tx *bolt.Tx) error {
			if err := checkSize(tx); err != nil {
				return err
			}
			l = load(tx)
			return nil
		})
	})
	if err != nil {
		return &CorruptError{Dir: st.dir, Fatal: true, Damage: []Damage{{Where: DBName, What: err.Error(), Loses: "everything the database held"}}}
	}
	if l.fresh {
		if name == "" {
			return errors.New("store: a new store needs the node's name")
		}
		l.name, l.instance = name, randomInstance()
		err := guard(func() error {
			return st.db.Update(func(tx *bolt.Tx) error {
				meta, err := tx.CreateBucket(bMeta)
				if err != nil {
					return err
				}
				for _, b := range [][]byte{bOut, bIn} {
					if _, err := tx.CreateBucket(b); err != nil {
						return err
					}
				}
				if err := meta.Put(kFormat, seal([]byte(formatV1))); err != nil {
					return err
				}
				if err := meta.Put(kName, seal([]byte(name))); err != nil {
					return err
				}
				if err := meta.Put(kInstance, sealedU64s(l.instance)); err != nil {
					return err
				}
				if err := meta.Put(kCGen, sealedU64s(0)); err != nil {
					return err
				}
				return meta.Put(kIDs, sealedU64s(0))
			})
		})
		if err != nil {
			return fmt.Errorf("store: create: %w", err)
		}
	}
	if l.metaBad {
		return &CorruptError{Dir: st.dir, Fatal: true, Damage: l.damage}
	}
	if name != "" && name != l.name {
		return fmt.Errorf("store: %s belongs to node %q, not %q", st.dir, l.name, name)
	}

	// The consumption log.
	logPath := filepath.Join(st.dir, LogName)
	clog, lerr := openLog(logPath)
	if lerr != nil {
		l.damage = append(l.damage, Damage{Where: LogName, What: lerr.Error(),
			Loses: "messages the application consumed since the last checkpoint may be delivered again"})
	}
	if len(l.damage) > 0 && !st.opts.Salvage {
		if clog != nil {
			clog.close()
		}
		return &CorruptError{Dir: st.dir, Damage: l.damage, Intact: l.intact()}
	}
	if lerr != nil {
		if err := os.Remove(logPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: %w", err)
		}
		if clog, lerr = openLog(logPath); lerr != nil {
			return fmt.Errorf("store: %w", lerr)
		}
	}
	st.clog = clog
	for _, d := range l.damage {
		st.opts.Logger.Warn("slc store: set aside a damaged part", "dir", st.dir, "part", d.Where, "problem", d.What, "loses", d.Loses)
	}
	st.damage = l.damage

	st.mu.Lock()
	defer st.mu.Unlock()
	st.name, st.instance, st.firstID = l.name, l.instance, l.ids
	st.restore(l)
	newest := clog.replay(l.cgen, func(idx uint32, inst, seq uint64) {
		if s := st.byIdx[idx]; s != nil {
			if c := s.cons[inst]; c != nil && c.consume(seq) {
				c.dirty = true
			}
		}
	})
	st.restoredIn = st.restoreInbox(l)

	// The first commit of this run.
	st.cur = &batch{n: 1, done: make(chan struct{})}
	w := st.collectLocked()
	w.ids = l.ids + idBlock
	w.cgen, w.setCGen = newest, true
	w.aside = l.aside
	err = guard(func() error { return st.db.Update(w.apply) })
	if err == nil && st.opts.Sync != SyncBatch {
		err = st.db.Sync()
	}
	if err != nil {
		return fmt.Errorf("store: first commit: %w", err)
	}
	st.settleLocked(w)
	st.cur = nil
	return clog.start(0, newest+1)
}

// restore builds the in-memory state from l.
func (st *Store) restore(l *loaded) {
	for _, o := range l.out {
		p := st.outPeerLocked(o.id)
		p.addr, p.rel = o.addr, o.rel
		rp := RestoredPeer{ID: o.id, Addr: o.addr, Acked: o.rel[0]}
		for _, r := range o.recs {
			var lastSeq, lastChunk uint64
			for _, f := range r.frames {
				lastSeq, lastChunk = f.Seq, f.Chunk
				if !p.released(f.Seq, f.Chunk) {
					rp.Frames = append(rp.Frames, f)
				}
			}
			p.recs = append(p.recs, outRec{key: r.key, lastSeq: lastSeq, lastChunk: lastChunk, size: r.size})
			p.nextKey = max(p.nextKey, r.key+1)
			st.outBytes += r.size
		}
		if len(rp.Frames) > 0 {
			st.restoredOut = append(st.restoredOut, rp)
		}
		// Release what the peer held already at the first commit.
		p.relDirty = true
	}
	for _, li := range l.in {
		if !li.badIdx {
			st.nextIdx = max(st.nextIdx, li.idx)
		}
	}
	for _, li := range l.in {
		s := &sender{id: li.id, idx: li.idx, inst: li.inst, dlv: li.dlv, cons: li.cons, asm: li.asm}
		if li.badIdx || li.idx == 0 {
			// Numbered anew, above every stored number.
			st.nextIdx++
			s.idx, s.idxDirty = st.nextIdx, true
		}
		st.in[li.id] = s
		st.byIdx[s.idx] = s
	}
	for _, li := range l.in {
		s := st.in[li.id]
		for _, r := range li.recs {
			c := s.consFor(r.inst)
			var last uint64
			for _, m := range r.msgs {
				last = m.seq
				if !c.consumed(m.seq) && (len(c.arrived) == 0 || m.seq > c.arrived[len(c.arrived)-1]) {
					c.arrived = append(c.arrived, m.seq)
				}
			}
			s.recs = append(s.recs, inRec{key: r.key, inst: r.inst, lastSeq: last})
			st.nextIn = max(st.nextIn, r.key)
		}
		for _, c := range s.cons {
			c.dirty = true
		}
	}
}

// restoreInbox returns the stored messages not consumed, in arrival order.
func (st *Store) restoreInbox(l *loaded) []RestoredMessages {
	type rec struct {
		from peer.ID
		r    loadedInRec
	}
	var recs []rec
	for _, li := range l.in {
		for _, r := range li.recs {
			recs = append(recs, rec{li.id, r})
		}
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].r.key < recs[j].r.key })
	var out []RestoredMessages
	for _, r := range recs {
		c := st.in[r.from].cons[r.r.inst]
		var msgs []peer.Message
		for _, sm := range r.r.msgs {
			if c != nil && c.consumed(sm.seq) {
				continue
			}
			msgs = append(msgs, restoreMessage(r.from, r.r.inst, sm))
		}
		if len(msgs) == 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].From == r.from {
			out[n-1].Msgs = append(out[n-1].Msgs, msgs...)
		} else {
			out = append(out, RestoredMessages{From: r.from, Msgs: msgs})
		}
	}
	return out
}

// restoreMessage decodes a stored message as the connection did.
func restoreMessage(from peer.ID, inst uint64, sm storedMessage) peer.Message {
	m := peer.Message{From: from, Instance: inst, ID: peer.MsgID(sm.seq), Type: sm.typ, Raw: append([]byte(nil), sm.raw...)}
	id, ser, ok := codec.SerializerByName(sm.ser)
	if !ok {
		m.Err = fmt.Errorf("slc: stored message %d uses serializer %q, which this node lacks", sm.seq, sm.ser)
		return m
	}
	m.Serializer = id
	if id == codec.Raw {
		m.Body = m.Raw
	} else {
		m.Body, m.Err = codec.Decode(sm.typ, ser, m.Raw)
	}
	return m
}

// intact summarizes what passed the checks.
func (l *loaded) intact() string {
	frames, inMsgs := 0, 0
	for _, o := range l.out {
		for _, r := range o.recs {
			frames += len(r.frames)
		}
	}
	for _, s := range l.in {
		for _, r := range s.recs {
			inMsgs += len(r.msgs)
		}
	}
	return fmt.Sprintf("node %q, instance %016x; %d outbound frames for %d peers; %d stored inbound messages from %d senders",
		l.name, l.instance, frames, len(l.out), inMsgs, len(l.in))
}

// checkSize compares the size the database's meta page records with the
// file's: a truncated file is found here, before a read past its end.
// (bbolt's own Tx.Check walks the pages in a goroutine of its own, where
// a fault cannot be caught, so Open relies on this, on reading every
// value under guard, and on each value's CRC.)
func checkSize(tx *bolt.Tx) error {
	fi, err := os.Stat(tx.DB().Path())
	if err != nil {
		return err
	}
	if want := tx.Size(); fi.Size() < want {
		return fmt.Errorf("the file has %d bytes, its meta page says %d: it was truncated", fi.Size(), want)
	}
	return nil
}
