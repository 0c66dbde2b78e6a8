package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
)

func init() { addCommand(newChatCmd) }

const (
	// chatFlushTimeout bounds the wait for the last lines' acknowledgements
	// when a chat ends.
	chatFlushTimeout = 10 * time.Second
	// maxChatLine is the longest line read from stdin.
	maxChatLine = 1 << 20
)

// chatFlags are the flags of slc chat.
type chatFlags struct {
	nodeFlags
	listen string
}

func newChatCmd(g *globals) *cobra.Command {
	var cf chatFlags
	cmd := &cobra.Command{
		Use:   "chat (ADDR | --listen ADDR)",
		Short: "Chat with another slc chat: lines typed are sent, lines received are printed",
		Long: `chat is a two-way text chat between two nodes. Run one side with --listen ADDR
and the other with ADDR:

  slc chat --listen 127.0.0.1:7000 --name alice
  slc chat 127.0.0.1:7000 --name bob

Every line read from stdin is sent to the other side (a listening side sends
to every node connected to it, and holds lines until one is). Lines received
are printed with the sender's name, and so are the connection events: a
dropped connection reconnects by itself and no line is lost.

EOF on stdin (Ctrl-D) or Ctrl-C ends the chat: it waits until the lines sent
are acknowledged, then says goodbye. A side that connected ends too when the
other side says goodbye.`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) > 1:
				return fmt.Errorf("accepts at most 1 arg, received %d", len(args))
			case len(args) == 1 && cf.listen != "":
				return errors.New("give either ADDR to connect or --listen ADDR, not both")
			case len(args) == 0 && cf.listen == "":
				return errors.New("give ADDR to connect to, or --listen ADDR to wait for the other side")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dial := ""
			if len(args) == 1 {
				dial = args[0]
			}
			return runChat(cmd.Context(), g, &cf, dial, cmd.InOrStdin())
		},
	}
	cf.addNameFlag(cmd)
	cf.addConnectFlags(cmd)
	cf.addListenFlags(cmd)
	cmd.Flags().StringVar(&cf.listen, "listen", "", "listen on this address and wait for the other side")
	return cmd
}

// chat is one run of slc chat.
type chat struct {
	n   *node
	out *printer

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when peers come or go
	remote  slc.PeerID    // the peer this side dialed, "" when listening
	ended   error         // set when the dialed peer's session ended
	endedCh chan struct{} // closed when ended is set
}

func runChat(ctx context.Context, g *globals, cf *chatFlags, dial string, stdin io.Reader) error {
	out := g.newPrinter()
	ch := &chat{out: out, changed: make(chan struct{}), endedCh: make(chan struct{})}
	quiet := func(ev any) bool {
		_, ok := ev.(*actors.MessagesAcknowledged)
		return ok
	}
	n, err := startNode(g, out, cf.name, quiet, ch.onEvent)
	if err != nil {
		return err
	}
	ch.n = n
	defer n.close()

	if cf.listen != "" {
		if _, err := n.listen(ctx, cf.listen, cf.addrFile); err != nil {
			return err
		}
		out.line(n.label, "info", "waiting for the other side")
	} else {
		p, err := n.connect(ctx, dial, cf.connectTimeout)
		if err != nil {
			return err
		}
		ch.mu.Lock()
		ch.remote = p
		ch.mu.Unlock()
	}

	// Print what arrives until the chat ends.
	recvCtx, stopRecv := context.WithCancel(ctx)
	var recvDone sync.WaitGroup
	recvDone.Go(func() { ch.receive(recvCtx) })
	defer func() {
		stopRecv()
		recvDone.Wait()
	}()

	lines, readErr := readLines(stdin)
	var sendErr error
loop:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				break loop // EOF
			}
			if sendErr = ch.send(ctx, line); sendErr != nil {
				break loop
			}
		case <-ch.endedCh:
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	stopRecv()
	recvDone.Wait()

	ch.mu.Lock()
	ended := ch.ended
	ch.mu.Unlock()
	switch {
	case sendErr != nil && ctx.Err() == nil:
		return sendErr
	case ended != nil && !errors.Is(ended, slc.ErrDisconnected):
		return ended
	case ended != nil:
		out.line(n.label, "info", "the other side left")
		return n.close()
	}
	if err := readErr(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	// EOF or Ctrl-C: flush what was sent, say goodbye.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), chatFlushTimeout)
	defer cancel()
	if err := n.Disconnect(fctx); err != nil && !errors.Is(err, slc.ErrUnknownPeer) {
		return err
	}
	out.line(n.label, "info", "bye")
	if err := n.close(); err != nil {
		return err
	}
	return out.Err()
}

// onEvent tracks the peers; it runs on the publishing goroutine.
func (ch *chat) onEvent(ev any) {
	var (
		from  slc.PeerID
		ended error
	)
	switch e := ev.(type) {
	case *actors.PeerConnected:
	case *actors.PeerDisconnected:
		if e.Final {
			from, ended = e.Peer, fmt.Errorf("%s: %w", e.Peer, slc.ErrDisconnected)
		}
	case *actors.PeerLost:
		from, ended = e.Peer, fmt.Errorf("lost the connection to %s: %w", e.Peer, cmp.Or(e.Err, slc.ErrPeerLost))
	default:
		return
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ended != nil && from == ch.remote && ch.remote != "" && ch.ended == nil {
		ch.ended = ended
		close(ch.endedCh)
	}
	close(ch.changed)
	ch.changed = make(chan struct{})
}

// send sends a line to the other side, waiting for one to connect first.
func (ch *chat) send(ctx context.Context, line string) error {
	waiting := false
	for {
		ch.mu.Lock()
		changed, ended := ch.changed, ch.ended
		ch.mu.Unlock()
		if ended != nil {
			return nil // the loop reports it
		}
		if len(ch.n.Peers()) > 0 {
			_, err := ch.n.Send(ctx, line)
			if !errors.Is(err, slc.ErrNoPeers) {
				return err
			}
		}
		if !waiting {
			ch.out.line(ch.n.label, "info", "no one connected yet: the line is sent once someone is")
			waiting = true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// receive prints the lines (and any other messages) that arrive until ctx
// ends, then those already waiting: a peer that said goodbye had every
// line it sent acknowledged, so they are all in the mailbox.
func (ch *chat) receive(ctx context.Context) {
	for {
		m, err := ch.n.Receive(ctx)
		if err != nil {
			break
		}
		ch.print(m)
	}
	for {
		m, ok := ch.n.TryReceive()
		if !ok {
			return
		}
		ch.print(m)
	}
}

func (ch *chat) print(m slc.Message) {
	if s, ok := m.Body.(string); ok && m.Err == nil {
		if !strconv.CanBackquote(s) {
			s = strconv.Quote(s)
		}
		ch.out.line(string(m.From), "chat", s)
		return
	}
	ch.out.line(string(m.From), "recv", "message", append([]field{f("id", m.ID)}, bodyFields(m)...)...)
}

// readLines reads r line by line on a goroutine of its own; the channel
// closes at EOF or on an error, which the returned function reports.
// (A goroutine blocked reading a terminal cannot be stopped; it ends with
// the process.)
func readLines(r io.Reader) (<-chan string, func() error) {
	lines := make(chan string)
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), maxChatLine)
		for sc.Scan() {
			lines <- sc.Text()
		}
		err = sc.Err()
	}()
	return lines, func() error {
		select {
		case <-done:
			return err
		default:
			return nil
		}
	}
}
