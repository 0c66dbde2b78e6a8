package main

// Helpers shared by the commands that run one node: listen, send, chat,
// send-file and recv-file.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/codec"
)

// defaultConnectTimeout bounds Connect, retries included.
const defaultConnectTimeout = 30 * time.Second

// nodeFlags are the flags of a command that runs one node.
type nodeFlags struct {
	name           string
	connectTimeout time.Duration
	addrFile       string
}

// addNameFlag adds --name.
func (nf *nodeFlags) addNameFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&nf.name, "name", "", "this node's name (default: host name, process ID and a random suffix)")
}

// addConnectFlags adds --connect-timeout.
func (nf *nodeFlags) addConnectFlags(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&nf.connectTimeout, "connect-timeout", defaultConnectTimeout,
		"give up connecting after this long, retries included (0: no limit)")
}

// addListenFlags adds --addr-file.
func (nf *nodeFlags) addListenFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&nf.addrFile, "addr-file", "",
		"write the address the node listens on to this file (useful with port 0)")
}

// node is a running communicator of a command, with its events printed.
type node struct {
	*slc.Communicator
	label   string // the node column of the output
	out     *printer
	unwatch func()

	mu       sync.Mutex
	lastErrs map[string]error // the last failed connection attempt, by address

	closeOnce sync.Once
	closeErr  error
}

// startNode starts a communicator with the global options plus extra.
// Its events are printed unless quiet says otherwise, and passed to also
// (which must not block).
func startNode(g *globals, out *printer, name string, quiet func(ev any) bool, also func(ev any),
	extra ...slc.Option) (*node, error) {
	c, err := slc.New(g.nodeOptions(name, extra...)...)
	if err != nil {
		return nil, err
	}
	n := &node{Communicator: c, label: string(c.Name()), out: out, lastErrs: map[string]error{}}
	es := c.ActorSystem().EventStream
	sub := es.Subscribe(func(ev any) {
		if r, ok := ev.(*actors.PeerReconnecting); ok && r.Err != nil {
			n.mu.Lock()
			n.lastErrs[r.Addr] = r.Err
			n.mu.Unlock()
		}
		evName, fields, ok := describeEvent(ev)
		if !ok {
			return
		}
		if quiet == nil || !quiet(ev) {
			out.line(n.label, "event", evName, fields...)
		}
		if also != nil {
			also(ev)
		}
	})
	n.unwatch = func() { es.Unsubscribe(sub) }
	return n, nil
}

// close closes the communicator and stops printing its events. It is
// idempotent.
func (n *node) close() error {
	n.closeOnce.Do(func() {
		n.closeErr = n.Close()
		n.unwatch()
	})
	return n.closeErr
}

// listen listens on addr, prints the bound address and writes it to
// addrFile when one is given.
func (n *node) listen(ctx context.Context, addr, addrFile string) (string, error) {
	a, err := n.Listen(ctx, addr)
	if err != nil {
		return "", unprefixed(err) // it names the address
	}
	bound := formatAddr(a.Network(), a.String())
	if addrFile != "" {
		if err := writeFileAtomic(addrFile, []byte(bound+"\n")); err != nil {
			return "", fmt.Errorf("--addr-file: %w", err)
		}
	}
	n.out.line(n.label, "info", "listening", f("addr", bound))
	return bound, nil
}

// formatAddr renders a bound address as Connect takes it.
func formatAddr(network, s string) string {
	if network == "unix" {
		return "unix:" + s
	}
	return s
}

// connect connects to addr within timeout (0: no limit). When it gives up,
// the error says why the last attempt failed.
func (n *node) connect(ctx context.Context, addr string, timeout time.Duration) (slc.PeerID, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	p, err := n.Connect(ctx, addr)
	if err == nil {
		n.out.line(n.label, "info", "connected", f("peer", p), f("addr", addr))
		return p, nil
	}
	n.mu.Lock()
	last := n.lastErrs[addr]
	n.mu.Unlock()
	switch {
	case errors.Is(err, context.DeadlineExceeded) && last != nil:
		return "", fmt.Errorf("connect to %s: no connection within %v; last attempt: %w", addr, timeout, last)
	case errors.Is(err, context.DeadlineExceeded):
		return "", fmt.Errorf("connect to %s: no connection within %v", addr, timeout)
	case strings.Contains(err.Error(), addr):
		return "", unprefixed(err)
	}
	return "", fmt.Errorf("connect to %s: %w", addr, err)
}

// unprefixed returns err without the "slc: " its message starts with:
// the command adds its own.
func unprefixed(err error) error {
	if msg, ok := strings.CutPrefix(err.Error(), "slc: "); ok {
		return &prefixless{msg: msg, err: err}
	}
	return err
}

type prefixless struct {
	msg string
	err error
}

func (e *prefixless) Error() string { return e.msg }
func (e *prefixless) Unwrap() error { return e.err }

// deliveredWait bounds waitDelivered.
const deliveredWait = 2 * time.Second

// waitDelivered waits (briefly) until each peer's delivered watermark has
// reached the last message received from it, so that the acknowledgement
// of those messages goes out before Close says goodbye.
//
// A connection's reader places messages in the mailbox and only then
// advances the watermark: Receive can return a message before that, and a
// Close right away would say goodbye without acknowledging it, failing
// the sender's WaitAcknowledged. The window is a few instructions wide, so
// this polls; it goes once the library closes the window itself.
func (n *node) waitDelivered(ctx context.Context, last map[slc.PeerID]slc.MsgID) {
	deadline := time.Now().Add(deliveredWait)
	for p, id := range last {
		for {
			st, ok := n.PeerStats(p)
			if !ok || st.Delivered >= id || ctx.Err() != nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// writeFileAtomic writes b to path through a temporary file and a rename,
// so that a reader never sees a partial file.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Previews of raw bodies.
const (
	previewRunes = 64
	previewBytes = 32
)

// bodyFields describes a received message's body: decoded values as JSON,
// raw bytes as their size and a preview (UTF-8 text or hex).
func bodyFields(m slc.Message) []field {
	switch {
	case m.Err != nil:
		return append([]field{f("size", len(m.Raw))}, append(rawPreview(m.Raw), f("err", m.Err))...)
	case m.Serializer == codec.Raw:
		return append([]field{f("size", len(m.Raw))}, rawPreview(m.Raw)...)
	}
	return []field{opt("type", m.Type), f("body", bodyValue{m.Body})}
}

// rawPreview shows the start of b as text when it is printable UTF-8 and
// in hex otherwise.
func rawPreview(b []byte) []field {
	if printable(b) {
		s, cut := string(b), false
		if utf8.RuneCountInString(s) > previewRunes {
			s, cut = string([]rune(s)[:previewRunes]), true
		}
		return []field{f("text", s), opt("truncated", cut)}
	}
	n := min(len(b), previewBytes)
	return []field{f("hex", hex.EncodeToString(b[:n])), opt("truncated", n < len(b))}
}

func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// bodyValue is a decoded body: compact JSON in text output, its JSON value
// in JSON lines. Values JSON cannot encode (maps with non-string keys) are
// shown with fmt.
type bodyValue struct{ v any }

func (b bodyValue) String() string {
	j, err := b.MarshalJSON()
	if err != nil {
		return fmt.Sprint(b.v)
	}
	return string(j)
}

func (b bodyValue) MarshalJSON() ([]byte, error) {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b.v); err != nil {
		sb.Reset()
		if err := enc.Encode(fmt.Sprintf("%v", b.v)); err != nil {
			return nil, err
		}
	}
	return []byte(strings.TrimSuffix(sb.String(), "\n")), nil
}

// endedByInterrupt returns nil for an error caused by the command being
// interrupted (Ctrl-C): commands that run until then end cleanly.
func endedByInterrupt(cmdCtx context.Context, err error) error {
	if err != nil && cmdCtx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
