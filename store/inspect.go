package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/slc-go/slc/peer"
)

// Report is what Inspect found in a store.
type Report struct {
	Dir      string
	Name     string
	Instance uint64
	// IDs is the message ID reservation: every ID the node issued is at
	// or below it.
	IDs uint64
	// Generation is the consumption-log generation folded into the
	// database; Pending counts the marks in the log after it.
	Generation uint64
	Pending    int
	Out        []OutReport
	In         []InReport
	Damage     []Damage
	FileBytes  int64
}

// OutReport describes the unacknowledged messages kept for one peer.
type OutReport struct {
	Peer     peer.ID
	Addr     string // "" when the peer dials this node
	Acked    uint64
	Messages int // messages with frames kept
	Frames   int
	Bytes    int64
	First    uint64 // first and last message ID kept
	Last     uint64
}

// InReport describes what is kept from one sender.
type InReport struct {
	Peer       peer.ID
	Instance   uint64
	Delivered  uint64 // the highest message ID placed in the mailbox
	Unconsumed int    // messages kept that the application has not consumed
	Partial    string // a chunked message partly received, or ""
}

// Inspect reads the store in dir without changing it (it may be open in
// another process: it then fails with ErrInUse). It reports damage in
// Report.Damage rather than failing, unless the database itself is
// unreadable (a *CorruptError).
func Inspect(dir string) (*Report, error) {
	path := filepath.Join(dir, DBName)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	st := &Store{dir: dir}
	db, err := openDB(path, true, true)
	if err != nil {
		return nil, st.openErr(err)
	}
	defer db.Close()
	var l *loaded
	err = guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			if err := checkSize(tx); err != nil {
				return err
			}
			l = load(tx)
			return nil
		})
	})
	if err != nil {
		return nil, &CorruptError{Dir: dir, Fatal: true, Damage: []Damage{{Where: DBName, What: err.Error(), Loses: "everything the database held"}}}
	}
	if l.fresh {
		return nil, errors.New("store: " + dir + " holds no store")
	}
	r := &Report{Dir: dir, Name: l.name, Instance: l.instance, IDs: l.ids, Generation: l.cgen, Damage: l.damage, FileBytes: fi.Size()}
	if l.metaBad {
		return r, nil
	}
	// The consumption log, read without mapping it.
	marks := map[uint32]map[uint64][]uint64{}
	if b, err := os.ReadFile(filepath.Join(dir, LogName)); err == nil && len(b) == 2*logHalf {
		cl := &consumedLog{r: memRegion(b)}
		cl.replay(l.cgen, func(idx uint32, inst, seq uint64) {
			if marks[idx] == nil {
				marks[idx] = map[uint64][]uint64{}
			}
			marks[idx][inst] = append(marks[idx][inst], seq)
			r.Pending++
		})
	} else if err == nil || !errors.Is(err, os.ErrNotExist) {
		what := fmt.Sprintf("%d bytes, want %d", len(b), 2*logHalf)
		if err != nil {
			what = err.Error()
		}
		r.Damage = append(r.Damage, Damage{Where: LogName, What: what, Loses: "messages the application consumed since the last checkpoint may be delivered again"})
	}
	for _, o := range l.out {
		p := &outPeer{rel: o.rel}
		or := OutReport{Peer: o.id, Addr: o.addr, Acked: o.rel[0]}
		var last uint64
		for _, rec := range o.recs {
			for _, f := range rec.frames {
				if p.released(f.Seq, f.Chunk) {
					continue
				}
				if or.First == 0 {
					or.First = f.Seq
				}
				if f.Seq != last {
					or.Messages++
					last = f.Seq
				}
				or.Frames++
				or.Bytes += int64(len(f.Bytes))
			}
		}
		or.Last = last
		r.Out = append(r.Out, or)
	}
	for _, s := range l.in {
		ir := InReport{Peer: s.id, Instance: s.inst, Delivered: s.dlv}
		for inst, seqs := range marks[s.idx] {
			c := s.cons[inst]
			if c == nil {
				continue
			}
			for _, q := range seqs {
				if !c.consumed(q) {
					if c.ooo == nil {
						c.ooo = map[uint64]struct{}{}
					}
					c.ooo[q] = struct{}{}
				}
			}
		}
		for _, rec := range s.recs {
			c := s.cons[rec.inst]
			for _, m := range rec.msgs {
				if c == nil || !c.consumed(m.seq) {
					ir.Unconsumed++
				}
			}
		}
		if s.asm != nil {
			ir.Partial = fmt.Sprintf("message %d, %d chunks", s.asm.p.Seq, s.asm.p.Chunks)
		}
		r.In = append(r.In, ir)
	}
	sort.Slice(r.Out, func(i, j int) bool { return r.Out[i].Peer < r.Out[j].Peer })
	sort.Slice(r.In, func(i, j int) bool { return r.In[i].Peer < r.In[j].Peer })
	return r, nil
}

// Print writes r in a human form.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "store %s (%d bytes)\n", r.Dir, r.FileBytes)
	fmt.Fprintf(w, "node %q, instance %016x, message IDs reserved up to %d\n", r.Name, r.Instance, r.IDs)
	fmt.Fprintf(w, "consumption log: generation %d folded in, %d marks pending\n", r.Generation, r.Pending)
	if len(r.Out) == 0 {
		fmt.Fprintln(w, "outbound: nothing unacknowledged")
	}
	for _, o := range r.Out {
		dial := o.Addr
		if dial == "" {
			dial = "(it dials this node)"
		}
		if o.Messages == 0 {
			fmt.Fprintf(w, "outbound to %s at %s: nothing unacknowledged (acked %d)\n", o.Peer, dial, o.Acked)
			continue
		}
		fmt.Fprintf(w, "outbound to %s at %s: %d unacknowledged messages (%d..%d), %d frames, %d bytes; acked %d\n",
			o.Peer, dial, o.Messages, o.First, o.Last, o.Frames, o.Bytes, o.Acked)
	}
	for _, s := range r.In {
		fmt.Fprintf(w, "inbound from %s (instance %016x): delivered up to %d, %d kept and not consumed", s.Peer, s.Instance, s.Delivered, s.Unconsumed)
		if s.Partial != "" {
			fmt.Fprintf(w, ", partly received %s", s.Partial)
		}
		fmt.Fprintln(w)
	}
	if len(r.Damage) == 0 {
		fmt.Fprintln(w, "checks: everything passed")
		return
	}
	fmt.Fprintf(w, "checks: %d damaged parts\n", len(r.Damage))
	for _, d := range r.Damage {
		fmt.Fprintf(w, "  %s\n", d)
	}
}

// memRegion is a consumption log read into memory.
type memRegion []byte

func (m memRegion) bytes() []byte          { return m }
func (m memRegion) wrote(off, n int) error { return nil }
func (m memRegion) sync() error            { return nil }
func (m memRegion) close() error           { return nil }
