package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc"
)

func init() { addCommand(newListenCmd) }

func newListenCmd(g *globals) *cobra.Command {
	var (
		nf    nodeFlags
		count int
	)
	cmd := &cobra.Command{
		Use:   "listen ADDR",
		Short: "Listen on ADDR and print the messages and events that arrive",
		Long: `listen starts a node that listens on ADDR ("host:port", "[::1]:port" or
"unix:/path"; port 0 picks a free port) and prints every message it receives
and every event of its connections, until Ctrl-C.

The first line reports the address it listens on. Typed messages are decoded
generically and shown as JSON (with their registered type name, if any); raw
messages are shown by size with a short UTF-8 or hex preview.

  slc listen 127.0.0.1:7000
  slc send 127.0.0.1:7000 hello world     # in another terminal`,
		Example: `  slc listen 127.0.0.1:0 --addr-file /tmp/slc.addr
  slc listen unix:/tmp/slc.sock --json --count 10`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runListen(cmd.Context(), g, &nf, args[0], count)
		},
	}
	nf.addNameFlag(cmd)
	nf.addListenFlags(cmd)
	cmd.Flags().IntVar(&count, "count", 0, "exit after this many messages (0: run until interrupted)")
	return cmd
}

func runListen(ctx context.Context, g *globals, nf *nodeFlags, addr string, count int) error {
	out := g.newPrinter()
	n, err := startNode(g, out, nf.name, nil, nil)
	if err != nil {
		return err
	}
	defer n.close()
	if _, err := n.listen(ctx, addr, nf.addrFile); err != nil {
		return err
	}
	last := map[slc.PeerID]slc.MsgID{} // the last message from each peer
	for received := 0; count <= 0 || received < count; received++ {
		m, err := n.Receive(ctx)
		if err != nil {
			return endedByInterrupt(ctx, err)
		}
		last[m.From] = m.ID
		out.line(n.label, "recv", "message", append([]field{f("id", m.ID), f("from", m.From)}, bodyFields(m)...)...)
	}
	n.waitDelivered(ctx, last)
	if err := n.close(); err != nil {
		return err
	}
	return out.Err()
}
