package main

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
)

func init() { addCommand(newRecvFileCmd) }

const (
	defaultRecvAddr = ":7878"
	// checkpointEvery is how many bytes a transfer takes between two syncs
	// of NAME.part and updates of NAME.part.state.
	checkpointEvery = 16 << 20
	// recvInboxBytes bounds the chunks waiting in memory per sender.
	recvInboxBytes = 16 << 20
)

// recvFileFlags are the flags of slc recv-file.
type recvFileFlags struct {
	nodeFlags
	listen    string
	once      bool
	overwrite bool
	progress  bool
}

func newRecvFileCmd(g *globals) *cobra.Command {
	var rf recvFileFlags
	cmd := &cobra.Command{
		Use:   "recv-file DIR",
		Short: "Receive the files slc send-file sends, into DIR",
		Long: `recv-file listens (on --listen, default ` + defaultRecvAddr + `) and stores the files that
slc send-file sends into DIR, which it creates if needed. It accepts plain
file names only: a name with a directory, "..", or an absolute path is
refused.

A file is written to DIR/NAME` + partSuffix + ` and renamed to DIR/NAME once its SHA-256
matches the sender's. Beside the partial file, DIR/NAME` + stateSuffix + ` records how
much of it is stored, so that when either side stops, running send-file
again resumes where the transfer stood, even after recv-file restarted.
An existing DIR/NAME is not replaced unless --overwrite is given.

recv-file runs until Ctrl-C (or, with --once, until one file is received).`,
		Example: `  slc recv-file ./incoming
  slc recv-file --listen 127.0.0.1:0 --addr-file /tmp/recv.addr --once ./incoming`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRecvFile(cmd.Context(), g, &rf, args[0])
		},
	}
	rf.addNameFlag(cmd)
	rf.addListenFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&rf.listen, "listen", defaultRecvAddr, "the address to listen on")
	fl.BoolVar(&rf.once, "once", false, "exit after the first file is received")
	fl.BoolVar(&rf.overwrite, "overwrite", false, "replace files that already exist in DIR")
	fl.BoolVar(&rf.progress, "progress", true, "show a progress bar on stderr (only when stderr is a terminal, never with --json)")
	return cmd
}

// fileKey identifies a file: a transfer resumes only for the same one.
type fileKey struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// partState is the content of NAME.part.state.
type partState struct {
	fileKey
	Have      int64  `json:"have"`       // bytes of NAME.part that are stored and hashed
	HashState []byte `json:"hash_state"` // the SHA-256 state after them
}

// transfer is a file being received.
type transfer struct {
	key     fileKey
	owner   slc.PeerID // the sender whose chunks are taken
	part    *os.File
	have    int64
	saved   int64 // have at the last checkpoint
	hash    hash.Hash
	pr      *progress
	started time.Time
	from    int64 // have when the current sender's offer was accepted
}

// fileReceiver is one run of recv-file.
type fileReceiver struct {
	g      *globals
	rf     *recvFileFlags
	n      *node
	out    *printer
	dir    *os.Root
	showPB bool

	byName map[string]*transfer     // transfers in progress, by file name
	byPeer map[slc.PeerID]*transfer // the transfer each sender feeds
	stale  map[slc.PeerID]int       // chunks dropped per sender, reported once
}

func runRecvFile(ctx context.Context, g *globals, rf *recvFileFlags, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	out := g.newPrinter()
	r := &fileReceiver{
		g: g, rf: rf, out: out, dir: root,
		showPB: rf.progress && !g.json && isTerminal(g.stderr),
		byName: map[string]*transfer{}, byPeer: map[slc.PeerID]*transfer{}, stale: map[slc.PeerID]int{},
	}
	quiet := func(ev any) bool {
		_, ok := ev.(*actors.MessagesAcknowledged)
		return ok
	}
	r.n, err = startNode(g, out, rf.name, quiet, nil, slc.WithInboxCap(recvInboxBytes, slc.DefaultInboxMessages))
	if err != nil {
		return err
	}
	defer r.n.close()
	defer r.saveAll()
	if _, err := r.n.listen(ctx, rf.listen, rf.addrFile); err != nil {
		return err
	}
	out.line(r.n.label, "info", "receiving files", f("dir", dir))
	for {
		m, err := r.n.Receive(ctx)
		if err != nil {
			return endedByInterrupt(ctx, err)
		}
		done, err := r.handle(ctx, m)
		m.Release() // a chunk's data was decoded into a copy, or written out
		if err != nil {
			return err
		}
		if done != nil && rf.once {
			if done.Err != "" {
				return fmt.Errorf("receiving %s failed: %s", done.Name, done.Err)
			}
			// Let the sender have the result before saying goodbye.
			if err := r.n.Disconnect(ctx, m.From); err != nil && !errors.Is(err, slc.ErrUnknownPeer) && !errors.Is(err, slc.ErrDisconnected) {
				return err
			}
			if err := r.n.close(); err != nil {
				return err
			}
			return out.Err()
		}
	}
}

// handle processes one message. It returns the result of a transfer that
// ended with it. Its error ends recv-file: only a failure of this process
// (the node, the output) does; a failed transfer is reported to its sender.
func (r *fileReceiver) handle(ctx context.Context, m slc.Message) (*FileResult, error) {
	if m.Err != nil {
		r.out.line(r.n.label, "warn", "undecodable message", f("id", m.ID), f("from", m.From), f("err", m.Err))
		return nil, nil
	}
	switch b := m.Body.(type) {
	case FileOffer:
		return nil, r.onOffer(ctx, m.From, b)
	case FileChunk:
		return r.onChunk(ctx, m.From, b)
	case FileDone:
		return r.onDone(ctx, m.From, b)
	}
	r.out.line(r.n.label, "warn", "ignored a message that is not part of a file transfer",
		append([]field{f("id", m.ID), f("from", m.From)}, bodyFields(m)...)...)
	return nil, nil
}

// reply sends v to a sender. A sender that has gone away gets it if it
// comes back; one that is lost does not need it.
func (r *fileReceiver) reply(ctx context.Context, to slc.PeerID, v any) error {
	_, err := r.n.Send(ctx, v, to)
	if err != nil && (errors.Is(err, slc.ErrPeerLost) || errors.Is(err, slc.ErrUnknownPeer) || errors.Is(err, slc.ErrDisconnected)) {
		r.out.line(r.n.label, "warn", "could not answer the sender", f("peer", to), f("err", err))
		return nil
	}
	return err
}

func (r *fileReceiver) refuse(ctx context.Context, from slc.PeerID, name string, reason error) error {
	r.out.line(r.n.label, "refused", name, f("from", from), f("err", reason))
	return r.reply(ctx, from, FileAccept{Name: name, Err: reason.Error()})
}

func (r *fileReceiver) onOffer(ctx context.Context, from slc.PeerID, o FileOffer) error {
	if err := checkFileName(o.Name); err != nil {
		return r.refuse(ctx, from, o.Name, err)
	}
	if o.Size < 0 || len(o.SHA256) != sha256.Size {
		return r.refuse(ctx, from, o.Name, errors.New("malformed offer"))
	}
	key := fileKey{Name: o.Name, Size: o.Size, SHA256: hexSum(o.SHA256)}
	// A new offer from this sender replaces its previous one.
	if t := r.byPeer[from]; t != nil {
		delete(r.byPeer, from)
		if t.owner == from && t.key != key {
			t.owner = ""
		}
	}
	if !r.rf.overwrite {
		if _, err := r.dir.Stat(o.Name); err == nil {
			return r.refuse(ctx, from, o.Name, fmt.Errorf("%s already exists (recv-file --overwrite replaces it)", o.Name))
		}
	}

	t := r.byName[o.Name]
	switch {
	case t != nil && t.key == key:
		// The same file, from the sender that restarted or from another:
		// take over where it stands.
		if t.owner != "" && t.owner != from {
			delete(r.byPeer, t.owner)
			_ = r.reply(ctx, t.owner, FileResult{Name: o.Name, Err: fmt.Sprintf("the transfer was taken over by %s", from)})
		}
	case t != nil:
		// Another file under the same name: it replaces the partial one.
		if t.owner != "" {
			delete(r.byPeer, t.owner)
			_ = r.reply(ctx, t.owner, FileResult{Name: o.Name, Err: fmt.Sprintf("replaced by another file of the same name from %s", from)})
		}
		r.discard(t)
		t = nil
	}
	if t == nil {
		var err error
		if t, err = r.open(key); err != nil {
			r.out.line(r.n.label, "error", "cannot store "+o.Name, f("err", err))
			return r.reply(ctx, from, FileAccept{Name: o.Name, Err: err.Error()})
		}
		r.byName[o.Name] = t
	}
	t.owner, t.started, t.from = from, time.Now(), t.have
	r.byPeer[from] = t
	r.out.line(r.n.label, "offer", o.Name, f("from", from), f("size", o.Size), f("sha256", key.SHA256),
		f("resume_at", t.have))
	if t.pr != nil {
		t.pr.abort()
	}
	t.pr = newProgress(r.g, r.out, r.n.label, "recv", o.Name, t.have, o.Size, r.showPB)
	return r.reply(ctx, from, FileAccept{Name: o.Name, ResumeAt: t.have})
}

// open starts a transfer of key: from NAME.part and its state when they
// hold the start of the same file, from scratch otherwise.
func (r *fileReceiver) open(key fileKey) (*transfer, error) {
	t := &transfer{key: key, hash: sha256.New()}
	part, err := r.dir.OpenFile(key.Name+partSuffix, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	t.part = part
	if st, ok := r.loadState(key); ok {
		if fi, err := part.Stat(); err == nil && fi.Size() >= st.Have {
			if err := t.hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.HashState); err == nil {
				t.have, t.saved = st.Have, st.Have
			} else {
				t.hash.Reset()
			}
		}
	}
	if err := part.Truncate(t.have); err != nil {
		part.Close()
		return nil, err
	}
	if _, err := part.Seek(t.have, io.SeekStart); err != nil {
		part.Close()
		return nil, err
	}
	if t.have == 0 {
		if err := r.checkpoint(t); err != nil {
			part.Close()
			return nil, err
		}
	}
	return t, nil
}

// loadState reads NAME.part.state if it describes key.
func (r *fileReceiver) loadState(key fileKey) (partState, bool) {
	b, err := r.dir.ReadFile(key.Name + stateSuffix)
	if err != nil {
		return partState{}, false
	}
	var st partState
	if json.Unmarshal(b, &st) != nil || st.fileKey != key || st.Have < 0 || st.Have > key.Size {
		return partState{}, false
	}
	return st, true
}

// checkpoint syncs NAME.part and records in NAME.part.state how much of
// it is stored.
func (r *fileReceiver) checkpoint(t *transfer) error {
	if err := t.part.Sync(); err != nil {
		return err
	}
	hs, err := t.hash.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	b, err := json.Marshal(partState{fileKey: t.key, Have: t.have, HashState: hs})
	if err != nil {
		return err
	}
	tmp := t.key.Name + stateSuffix + ".tmp"
	if err := r.dir.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := r.dir.Rename(tmp, t.key.Name+stateSuffix); err != nil {
		return err
	}
	t.saved = t.have
	return nil
}

// fail ends a transfer whose data cannot be used and tells its sender.
func (r *fileReceiver) fail(ctx context.Context, t *transfer, reason string) (*FileResult, error) {
	r.out.line(r.n.label, "failed", t.key.Name, f("from", t.owner), f("err", reason))
	if t.pr != nil {
		t.pr.abort()
	}
	owner := t.owner
	delete(r.byPeer, owner)
	r.discard(t)
	res := &FileResult{Name: t.key.Name, Err: reason}
	return res, r.reply(ctx, owner, *res)
}

// discard closes a transfer and removes its partial file and state.
func (r *fileReceiver) discard(t *transfer) {
	t.part.Close()
	_ = r.dir.Remove(t.key.Name + partSuffix)
	_ = r.dir.Remove(t.key.Name + stateSuffix)
	delete(r.byName, t.key.Name)
}

func (r *fileReceiver) onChunk(ctx context.Context, from slc.PeerID, c FileChunk) (*FileResult, error) {
	t := r.byPeer[from]
	if t == nil {
		// Chunks of a transfer that was taken over or replaced, or that
		// this process never saw (it restarted): the sender offers again.
		if r.stale[from]++; r.stale[from] == 1 {
			r.out.line(r.n.label, "warn", "dropping chunks without a current offer", f("from", from))
		}
		return nil, nil
	}
	end := c.Offset + int64(len(c.Data))
	switch {
	case c.Offset != t.have:
		return r.fail(ctx, t, fmt.Sprintf("chunk at offset %d, expected %d", c.Offset, t.have))
	case end > t.key.Size:
		return r.fail(ctx, t, fmt.Sprintf("chunk ends at %d, past the size %d", end, t.key.Size))
	}
	if _, err := t.part.Write(c.Data); err != nil {
		return r.fail(ctx, t, "write: "+err.Error())
	}
	t.hash.Write(c.Data)
	t.have = end
	t.pr.add(len(c.Data))
	if t.have-t.saved >= checkpointEvery {
		if err := r.checkpoint(t); err != nil {
			return r.fail(ctx, t, "checkpoint: "+err.Error())
		}
	}
	return nil, nil
}

func (r *fileReceiver) onDone(ctx context.Context, from slc.PeerID, d FileDone) (*FileResult, error) {
	t := r.byPeer[from]
	if t == nil {
		return nil, nil
	}
	sum := t.hash.Sum(nil)
	switch {
	case t.have != t.key.Size || d.Size != t.key.Size:
		return r.fail(ctx, t, fmt.Sprintf("the transfer ended at %d bytes of %d", t.have, t.key.Size))
	case hexSum(sum) != t.key.SHA256 || hexSum(d.SHA256) != t.key.SHA256:
		return r.fail(ctx, t, fmt.Sprintf("SHA-256 mismatch: received %s, offered %s", hexSum(sum), t.key.SHA256))
	}
	if err := t.part.Sync(); err != nil {
		return r.fail(ctx, t, "sync: "+err.Error())
	}
	if err := t.part.Close(); err != nil {
		return r.fail(ctx, t, "close: "+err.Error())
	}
	if err := r.dir.Rename(t.key.Name+partSuffix, t.key.Name); err != nil {
		return r.fail(ctx, t, "rename: "+err.Error())
	}
	_ = r.dir.Remove(t.key.Name + stateSuffix)
	delete(r.byName, t.key.Name)
	delete(r.byPeer, from)
	t.pr.finish()
	elapsed := time.Since(t.started)
	rate := "-"
	if secs := elapsed.Seconds(); secs > 0 {
		rate = formatBytes(int64(float64(t.have-t.from)/secs)) + "/s"
	}
	r.out.line(r.n.label, "done", "file received and verified", f("file", t.key.Name),
		f("path", filepath.Join(r.dir.Name(), t.key.Name)), f("from", from), f("size", t.key.Size),
		f("sha256", t.key.SHA256), f("resumed_at", t.from), f("elapsed", elapsed.Round(time.Millisecond)), f("rate", rate))
	res := &FileResult{Name: t.key.Name, Size: t.key.Size, SHA256: sum}
	return res, r.reply(ctx, from, *res)
}

// saveAll records where every unfinished transfer stands, for a later
// resume, and closes their files.
func (r *fileReceiver) saveAll() {
	for _, t := range r.byName {
		if t.pr != nil {
			t.pr.abort()
		}
		if err := r.checkpoint(t); err != nil && !errors.Is(err, fs.ErrClosed) {
			r.out.line(r.n.label, "warn", "could not save the state of "+t.key.Name, f("err", err))
		} else {
			r.out.line(r.n.label, "info", "kept the partial file", f("file", t.key.Name+partSuffix), f("have", t.have),
				f("of", t.key.Size))
		}
		t.part.Close()
	}
	r.byName = map[string]*transfer{}
}
