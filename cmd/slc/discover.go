package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc"
)

func init() { addCommand(newDiscoverCmd) }

func newDiscoverCmd(g *globals) *cobra.Command {
	var (
		df      discoveryFlags
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "discover [NAME]",
		Short: "Find the slc nodes advertised on the local network (mDNS)",
		Long: `discover browses the local network with mDNS for --timeout and prints every
slc node that answered (those advertising NAME, when given): its advertised
name, node name, the addresses to dial, port, instance ID and, in secure
mode, its key fingerprint. It queries again every quarter of a second at
first, so one lost packet does not hide a node.

It fails when no node answered. With --json each node is one JSON object
per line, with the fields name, peer, addrs, port, instance and
fingerprint.`,
		Example: `  slc discover
  slc discover lab-camera --timeout 5s
  slc discover --interface lo --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return runDiscover(cmd.Context(), g, &df, name, timeout)
		},
	}
	df.addFlags(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", slc.DefaultDiscoverTimeout, "how long to browse")
	return cmd
}

func runDiscover(ctx context.Context, g *globals, df *discoveryFlags, name string, timeout time.Duration) error {
	if timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %v", timeout)
	}
	out := g.newPrinter()
	n, err := startNode(g, out, "", nil, nil, df.options()...)
	if err != nil {
		return err
	}
	defer n.close()
	bctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	svcs, err := n.Discover(bctx, name)
	if err != nil {
		return unprefixed(err)
	}
	for _, s := range svcs {
		var addrs any = s.Addrs
		if !g.json {
			addrs = strings.Join(s.Addrs, ",")
		}
		out.line("discover", "found", s.Name, f("peer", s.PeerID), f("addrs", addrs), f("port", s.Port),
			f("instance", fmt.Sprintf("%016x", s.Instance)), opt("fingerprint", s.Fingerprint))
	}
	if err := n.close(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err() // interrupted
	}
	if len(svcs) == 0 {
		if name != "" {
			return fmt.Errorf("no node advertises %q (browsed for %v)", name, timeout)
		}
		return fmt.Errorf("no slc node found (browsed for %v)", timeout)
	}
	return out.Err()
}
