package main

// The file transfer protocol of send-file and recv-file, on top of slc
// messages. slc already delivers every message exactly once and in order
// across connection resets, so the protocol only deals with what slc
// cannot know: which file, where a transfer stands after either process
// restarted, and whether the bytes that arrived are the file's.
//
//	sender                                  receiver
//	FileOffer{Name, Size, SHA256}     -->   validates Name, finds DIR/NAME.part
//	                                  <--   FileAccept{ResumeAt} (or Err)
//	FileChunk{Offset, Data} ...       -->   appends to NAME.part, hashes
//	FileDone{Size, SHA256}            -->   checks size and SHA-256, renames
//	                                  <--   FileResult{Path} (or Err)
//
// Chunks go with Send, so the sender never has more than BufferCap
// unacknowledged bytes in flight and never holds the file in memory. The
// receiver appends chunks in order to NAME.part, keeps a running SHA-256
// and every few MiB syncs the file and writes NAME.part.state (the file's
// identity, the bytes it holds and the hash state). An offer of the same
// file (name, size and SHA-256) resumes where the receiver stands: from
// its memory when it kept running, from the state file when it restarted.
// When the receiver restarts during a transfer, the sender sees the peer
// come back as a new instance and offers the file again.

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/schollz/progressbar/v3"

	"github.com/slc-go/slc"
)

// FileOffer proposes a file. Name is a base name.
type FileOffer struct {
	Name      string
	Size      int64
	SHA256    []byte
	ChunkSize int
}

// FileAccept answers a FileOffer: send from ResumeAt on. A non-empty Err
// refuses the file.
type FileAccept struct {
	Name     string
	ResumeAt int64
	Err      string
}

// FileChunk carries the bytes of the offered file at Offset.
type FileChunk struct {
	Offset int64
	Data   []byte
}

// FileDone follows the last chunk.
type FileDone struct {
	Size   int64
	SHA256 []byte
}

// FileResult answers FileDone: the file is complete and its SHA-256
// matches (Err empty), or the transfer failed.
type FileResult struct {
	Name   string
	Size   int64
	SHA256 []byte
	Err    string
}

func init() {
	slc.Register[FileOffer]("slc.file.Offer")
	slc.Register[FileAccept]("slc.file.Accept")
	slc.Register[FileChunk]("slc.file.Chunk")
	slc.Register[FileDone]("slc.file.Done")
	slc.Register[FileResult]("slc.file.Result")
}

const (
	defaultChunkSize = 1 << 20
	maxChunkSize     = 16 << 20
	// partSuffix and stateSuffix name the receiver's partial file and its
	// state file, beside the final one.
	partSuffix  = ".part"
	stateSuffix = ".part.state"
	maxNameLen  = 255
)

// checkFileName accepts a plain base name: not empty, no directory
// separators, not "." or "..", no control characters, not one of the
// receiver's own partial or state files.
func checkFileName(name string) error {
	switch {
	case name == "":
		return errors.New("empty file name")
	case len(name) > maxNameLen:
		return fmt.Errorf("file name longer than %d bytes", maxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("invalid file name %q", name)
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("invalid file name %q: only a base name is accepted, without / or \\", name)
	case filepath.IsAbs(name) || filepath.VolumeName(name) != "":
		return fmt.Errorf("invalid file name %q: absolute path", name)
	case strings.HasSuffix(name, partSuffix) || strings.HasSuffix(name, stateSuffix):
		return fmt.Errorf("invalid file name %q: the %s and %s suffixes are reserved for partial files", name, partSuffix, stateSuffix)
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("invalid file name %q: control or invalid characters", name)
		}
	}
	return nil
}

func hexSum(b []byte) string { return hex.EncodeToString(b) }

// progress reports a transfer's progress: a bar on a terminal, otherwise
// a "progress" record at every tenth of the file (unless out is nil).
type progress struct {
	out   *printer
	label string
	name  string
	bar   *progressbar.ProgressBar

	total, done int64
	nextMark    int64 // the tenth of the file the next record waits for
	started     time.Time
	startAt     int64
}

// newProgress starts reporting from start bytes of total. With bar, a bar
// goes to stderr; otherwise records go to out, if it is not nil.
func newProgress(g *globals, out *printer, label, verb, name string, start, total int64, bar bool) *progress {
	p := &progress{out: out, label: label, name: name, total: total, done: start, started: time.Now(), startAt: start}
	if bar && total > start {
		desc := verb + " " + name
		if start > 0 {
			desc += fmt.Sprintf(" (from %s)", formatBytes(start))
		}
		p.bar = progressbar.NewOptions64(total-start,
			progressbar.OptionSetWriter(g.stderr),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(g.stderr) }),
		)
	}
	p.nextMark = p.markAfter(start)
	return p
}

// markAfter returns the first tenth of the file above n.
func (p *progress) markAfter(n int64) int64 {
	if p.total <= 0 {
		return 1
	}
	tenth := max(p.total/10, 1)
	return (n/tenth + 1) * tenth
}

// add counts n more bytes.
func (p *progress) add(n int) {
	p.done += int64(n)
	if p.bar != nil {
		_ = p.bar.Add(n)
		return
	}
	if p.out != nil && p.done >= p.nextMark && p.done < p.total {
		p.out.line(p.label, "progress", p.name, f("bytes", p.done), f("of", p.total),
			f("percent", p.done*100/p.total), f("rate", p.rate()))
		p.nextMark = p.markAfter(p.done)
	}
}

// rate is the throughput since the start, as text.
func (p *progress) rate() string {
	d := time.Since(p.started).Seconds()
	if d <= 0 {
		return "-"
	}
	return formatBytes(int64(float64(p.done-p.startAt)/d)) + "/s"
}

// finish ends the bar.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// abort leaves the bar where it stands, on a line of its own.
func (p *progress) abort() {
	if p.bar != nil && !p.bar.IsFinished() {
		_ = p.bar.Exit()
	}
}

// formatBytes renders n in IEC units.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
