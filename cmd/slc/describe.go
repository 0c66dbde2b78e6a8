package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/rpc"
)

func init() { addCommand(newDescribeCmd) }

func newDescribeCmd(g *globals) *cobra.Command {
	var rf rpcFlags
	cmd := &cobra.Command{
		Use:   "describe NODE",
		Short: "Show the paths, interfaces, methods and events of an rpc node",
		Long: `describe connects to the rpc node NODE (at the address given with --connect)
and prints what it offers: each path, the interfaces implemented there, and
their methods (with in- and out-arguments) and events, with their
documentation. It also lists the nodes NODE is connected to.

NODE may also be a peer of the node at --connect: that node answers with
what NODE announced to it.

With --json it prints one JSON object.`,
		Example: `  slc describe --connect 127.0.0.1:7000 timer
  slc describe -c 127.0.0.1:7000 timer --json
  slc describe -c 127.0.0.1:7000 other-peer-of-timer`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDescribe(cmd.Context(), g, &rf, args[0])
		},
	}
	rf.add(cmd)
	return cmd
}

func runDescribe(ctx context.Context, g *globals, rf *rpcFlags, node string) error {
	// The output is the description: the connection's report shows
	// with -v only.
	out := newPrinter(recordsTo(g), g.json)
	r, err := startRPC(ctx, g, out, rf, "", nil)
	if err != nil {
		return err
	}
	defer r.close()
	target := slc.PeerID(node)
	if target != r.peer && !knownVia(r.rn.Nodes(), target, r.peer) {
		// The peer's hello, which lists its peers, came before
		// startRPC returned.
		return fmt.Errorf("the node at %s is %q, not %q, and %q is not one of its peers", rf.connect, r.peer, target, target)
	}
	d, err := r.rn.Describe(ctx, target)
	if err != nil {
		return err
	}
	var others []rpc.NodeInfo
	if target == r.peer {
		for _, ni := range r.rn.Nodes() {
			if !ni.Peer && len(ni.Via) == 1 && ni.Via[0] == r.peer {
				others = append(others, ni)
			}
		}
	}
	if g.json {
		type view struct {
			*rpc.NodeDescription
			Peers []rpc.NodeInfo `json:"peers"`
		}
		b, err := json.Marshal(view{d, others})
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(g.stdout, "%s\n", b); err != nil {
			return err
		}
	} else if _, err := fmt.Fprint(g.stdout, formatDescription(d, others)); err != nil {
		return err
	}
	if err := r.close(); err != nil {
		return err
	}
	return out.Err()
}

// knownVia reports whether nodes lists node as a peer of via.
func knownVia(nodes []rpc.NodeInfo, node, via slc.PeerID) bool {
	for _, ni := range nodes {
		if ni.Name == node && slices.Contains(ni.Via, via) {
			return true
		}
	}
	return false
}

// recordsTo returns where describe's records go: to stderr with -v,
// else nowhere.
func recordsTo(g *globals) io.Writer {
	if g.verbose {
		return g.stderr
	}
	return discard{}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// formatDescription renders a description as an indented tree.
func formatDescription(d *rpc.NodeDescription, peers []rpc.NodeInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node %s (instance %016x, started %s)\n", d.Node, d.Instance, d.Started.Format(time.RFC3339))
	if len(d.Paths) == 0 {
		b.WriteString("  (no implementations)\n")
	}
	for _, p := range d.Paths {
		fmt.Fprintf(&b, "%s\n", p.Path)
		for _, i := range p.Interfaces {
			fmt.Fprintf(&b, "  %s\n", i.Name)
			writeDoc(&b, "    ", i.Description)
			for _, m := range i.Methods {
				sig := fmt.Sprintf("    method %s(%s)", m.Name, signature(m.In))
				if len(m.Out) > 0 {
					sig += fmt.Sprintf(" -> (%s)", signature(m.Out))
				}
				b.WriteString(sig + "\n")
				writeDoc(&b, "      ", m.Description)
				writeArgs(&b, "in ", m.In)
				writeArgs(&b, "out", m.Out)
			}
			for _, e := range i.Events {
				fmt.Fprintf(&b, "    event %s(%s)\n", e.Name, signature(e.Args))
				writeDoc(&b, "      ", e.Description)
				writeArgs(&b, "arg", e.Args)
			}
		}
	}
	if len(peers) > 0 {
		b.WriteString("peers\n")
		for _, ni := range peers {
			fmt.Fprintf(&b, "  %s (instance %016x)\n", ni.Name, ni.Instance)
		}
	}
	return b.String()
}

func writeDoc(b *strings.Builder, indent, doc string) {
	for l := range strings.Lines(doc) {
		b.WriteString(indent + strings.TrimRight(l, "\n") + "\n")
	}
}

func writeArgs(b *strings.Builder, kind string, args []rpc.Argument) {
	for _, a := range args {
		typ := a.Type
		if typ == "" {
			typ = rpc.TypeAny
		}
		fmt.Fprintf(b, "      %s %s %s: %s\n", kind, a.Name, typ, a.Description)
	}
}
