package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
)

func init() { addCommand(newSendFileCmd) }

// sendFileFlags are the flags of slc send-file.
type sendFileFlags struct {
	nodeFlags
	as        string
	chunkSize int
	progress  bool
}

func newSendFileCmd(g *globals) *cobra.Command {
	var sf sendFileFlags
	cmd := &cobra.Command{
		Use:   "send-file ADDR FILE",
		Short: "Send FILE to a node running slc recv-file, resuming where a previous attempt stopped",
		Long: `send-file sends FILE to the slc recv-file listening on ADDR, in chunks, so
that files of any size stream without being held in memory. It shows a
progress bar with the rate and the time left on stderr when stderr is a
terminal (otherwise, and with --json, it prints a progress record at every
tenth of the file), and checks the file's SHA-256 end to end: it ends
successfully only once the receiver has stored the whole file and its
SHA-256 matches.

A dropped connection reconnects by itself and the transfer goes on where it
stopped. If either process stops, run the same send-file again: the
receiver keeps the partial file, and the transfer resumes at the offset the
receiver reports ("resuming at offset N") instead of starting over.`,
		Example: `  slc recv-file --listen :7000 ./incoming      # on the receiving machine
  slc send-file receiver.lan:7000 ./scan-0042.tiff`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSendFile(cmd.Context(), g, &sf, args[0], args[1])
		},
	}
	sf.addNameFlag(cmd)
	sf.addConnectFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&sf.as, "as", "", "the name the receiver stores the file under (default: FILE's base name)")
	fl.IntVar(&sf.chunkSize, "chunk-size", defaultChunkSize, "bytes per chunk message")
	fl.BoolVar(&sf.progress, "progress", true, "show a progress bar on stderr (only when stderr is a terminal, never with --json)")
	return cmd
}

// errRestarted reports that the receiver restarted during a transfer: the
// file is offered again.
var errRestarted = errors.New("the receiver restarted")

// fileSender is one run of send-file.
type fileSender struct {
	g      *globals
	sf     *sendFileFlags
	n      *node
	out    *printer
	file   *os.File
	offer  FileOffer
	showPB bool

	sent    int64 // bytes of chunks sent by this run
	resumed int64 // the first offset this run sent

	mu         sync.Mutex
	peer       slc.PeerID
	waitCancel context.CancelFunc // ends the Receive in progress
	restarted  atomic.Bool
}

func runSendFile(ctx context.Context, g *globals, sf *sendFileFlags, addr, path string) error {
	if sf.chunkSize <= 0 || sf.chunkSize > maxChunkSize {
		return fmt.Errorf("--chunk-size must be between 1 and %d", maxChunkSize)
	}
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	// The receiver decides which names it accepts (checkFileName).
	name := sf.as
	if name == "" {
		name = filepath.Base(path)
	}

	out := g.newPrinter()
	s := &fileSender{g: g, sf: sf, out: out, file: file, showPB: sf.progress && !g.json && isTerminal(g.stderr)}
	quiet := func(ev any) bool {
		_, ok := ev.(*actors.MessagesAcknowledged)
		return ok
	}
	if s.n, err = startNode(g, out, sf.name, quiet, s.onEvent); err != nil {
		return err
	}
	defer s.n.close()

	start := time.Now()
	sum, err := s.hash(ctx, name, st.Size())
	if err != nil {
		return err
	}
	s.offer = FileOffer{Name: name, Size: st.Size(), SHA256: sum, ChunkSize: sf.chunkSize}
	out.line(s.n.label, "info", "hashed", f("file", name), f("size", st.Size()), f("sha256", hexSum(sum)),
		f("elapsed", time.Since(start).Round(time.Millisecond)))

	p, err := s.n.connect(ctx, addr, sf.connectTimeout)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.peer = p
	s.mu.Unlock()

	start = time.Now()
	s.resumed = -1
	var res FileResult
	for {
		var at int64
		if at, err = s.sendOffer(ctx); err == nil {
			if s.resumed < 0 {
				s.resumed = at
			}
			if err = s.stream(ctx, at); err == nil {
				res, err = s.result(ctx)
			}
		}
		if !errors.Is(err, errRestarted) {
			break
		}
		out.line(s.n.label, "info", "the receiver restarted: offering the file again", f("peer", p))
	}
	if err != nil {
		if errors.Is(err, slc.ErrPeerLost) || errors.Is(err, slc.ErrDisconnected) {
			return fmt.Errorf("%w (run the same command again to resume)", err)
		}
		return err
	}
	elapsed := time.Since(start)
	if err := s.n.Disconnect(ctx, p); err != nil && !errors.Is(err, slc.ErrUnknownPeer) && !errors.Is(err, slc.ErrDisconnected) {
		return fmt.Errorf("disconnect from %s: %w", p, err)
	}
	rate := "-"
	if secs := elapsed.Seconds(); secs > 0 {
		rate = formatBytes(int64(float64(s.sent)/secs)) + "/s"
	}
	out.line(s.n.label, "done", "file received and verified", f("file", res.Name), f("size", res.Size),
		f("sha256", hexSum(res.SHA256)), f("sent", s.sent), f("resumed_at", s.resumed),
		f("elapsed", elapsed.Round(time.Millisecond)), f("rate", rate))
	if err := s.n.close(); err != nil {
		return err
	}
	return out.Err()
}

// hash returns the file's SHA-256.
func (s *fileSender) hash(ctx context.Context, name string, size int64) ([]byte, error) {
	pr := newProgress(s.g, nil, s.n.label, "hashing", name, 0, size, s.showPB) // a bar, no records
	h := sha256.New()
	buf := make([]byte, s.sf.chunkSize)
	r := io.NewSectionReader(s.file, 0, size)
	for {
		if err := ctx.Err(); err != nil {
			pr.abort()
			return nil, err
		}
		k, err := r.Read(buf)
		h.Write(buf[:k])
		pr.add(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			pr.abort()
			return nil, err
		}
	}
	pr.finish()
	return h.Sum(nil), nil
}

// onEvent notices the receiver's restarts. It runs on the publishing
// goroutine.
func (s *fileSender) onEvent(ev any) {
	pc, ok := ev.(*actors.PeerConnected)
	if !ok || !pc.Restarted {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if pc.Peer != s.peer {
		return
	}
	s.restarted.Store(true)
	if s.waitCancel != nil {
		s.waitCancel()
	}
}

// receive returns the receiver's next message. It returns errRestarted
// when the receiver restarted.
func (s *fileSender) receive(ctx context.Context) (slc.Message, error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.waitCancel = cancel
	p := s.peer
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.waitCancel = nil
		s.mu.Unlock()
	}()
	if s.restarted.Load() {
		return slc.Message{}, errRestarted
	}
	m, err := s.n.Receive(rctx, p)
	if err != nil && ctx.Err() == nil && s.restarted.Load() {
		return m, errRestarted
	}
	return m, err
}

// sendOffer offers the file and returns the offset to send from.
func (s *fileSender) sendOffer(ctx context.Context) (int64, error) {
	s.restarted.Store(false)
	if _, err := s.n.Send(ctx, s.offer, s.peer); err != nil {
		return 0, fmt.Errorf("offer %s: %w", s.offer.Name, err)
	}
	for {
		m, err := s.receive(ctx)
		if err != nil {
			return 0, err
		}
		a, ok := m.Body.(FileAccept)
		if !ok {
			continue // a stale answer to an earlier offer
		}
		switch {
		case a.Err != "":
			return 0, fmt.Errorf("%s refused %s: %s", s.peer, s.offer.Name, a.Err)
		case a.ResumeAt < 0 || a.ResumeAt > s.offer.Size:
			return 0, fmt.Errorf("%s asked to resume %s at offset %d, beyond its size %d", s.peer, s.offer.Name, a.ResumeAt, s.offer.Size)
		}
		s.out.line(s.n.label, "info", "accepted", f("file", s.offer.Name), f("peer", s.peer), f("resume_at", a.ResumeAt))
		if a.ResumeAt > 0 {
			s.out.line(s.n.label, "info", fmt.Sprintf("resuming at offset %d", a.ResumeAt),
				f("offset", a.ResumeAt), f("remaining", s.offer.Size-a.ResumeAt))
		}
		return a.ResumeAt, nil
	}
}

// stream sends the file's chunks from offset at, then FileDone.
func (s *fileSender) stream(ctx context.Context, at int64) error {
	size := s.offer.Size
	pr := newProgress(s.g, s.out, s.n.label, "send", s.offer.Name, at, size, s.showPB)
	buf := make([]byte, s.sf.chunkSize)
	for off := at; off < size; {
		if s.restarted.Load() {
			pr.abort()
			return errRestarted
		}
		want := int(min(int64(len(buf)), size-off))
		k, err := s.file.ReadAt(buf[:want], off)
		if k < want {
			pr.abort()
			if err == nil || err == io.EOF {
				return fmt.Errorf("%s shrank while it was being sent", s.file.Name())
			}
			return err
		}
		if _, err := s.n.Send(ctx, FileChunk{Offset: off, Data: buf[:k]}, s.peer); err != nil {
			pr.abort()
			return fmt.Errorf("send %s at offset %d: %w", s.offer.Name, off, err)
		}
		off += int64(k)
		s.sent += int64(k)
		pr.add(k)
	}
	if _, err := s.n.Send(ctx, FileDone{Size: size, SHA256: s.offer.SHA256}, s.peer); err != nil {
		pr.abort()
		return fmt.Errorf("send %s: %w", s.offer.Name, err)
	}
	pr.finish()
	return nil
}

// result waits for the receiver's verdict.
func (s *fileSender) result(ctx context.Context) (FileResult, error) {
	for {
		m, err := s.receive(ctx)
		if err != nil {
			return FileResult{}, err
		}
		r, ok := m.Body.(FileResult)
		if !ok {
			continue
		}
		if r.Err != "" {
			return r, fmt.Errorf("%s could not store %s: %s", s.peer, s.offer.Name, r.Err)
		}
		if r.Size != s.offer.Size || hexSum(r.SHA256) != hexSum(s.offer.SHA256) {
			return r, fmt.Errorf("%s stored %s with size %d and SHA-256 %s, want %d and %s", s.peer, s.offer.Name,
				r.Size, hexSum(r.SHA256), s.offer.Size, hexSum(s.offer.SHA256))
		}
		return r, nil
	}
}
