package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc"
)

func init() { addCommand(newAdvertiseCmd) }

// discoveryFlags are the flags the discovery commands share.
type discoveryFlags struct {
	ifaces []string
}

func (df *discoveryFlags) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringSliceVarP(&df.ifaces, "interface", "i", nil,
		"network interface to use for mDNS, repeatable or comma-separated (default: every multicast-capable interface; \"lo\" for this host only)")
}

// options returns the node options for the flags.
func (df *discoveryFlags) options() []slc.Option {
	if len(df.ifaces) == 0 {
		return nil
	}
	return []slc.Option{slc.WithInterfaces(df.ifaces...)}
}

func newAdvertiseCmd(g *globals) *cobra.Command {
	var (
		nf     nodeFlags
		df     discoveryFlags
		listen string
		count  int
	)
	cmd := &cobra.Command{
		Use:   "advertise NAME",
		Short: "Listen, advertise NAME on the local network (mDNS) and print the messages that arrive",
		Long: `advertise starts a node that listens on a TCP port, announces itself on the
local network with mDNS under NAME (DNS-SD service type _slc._tcp), and
prints every message it receives and every event of its connections, like
"slc listen", until Ctrl-C. Then it says goodbye, so that browsers forget
the name at once.

Other nodes find it with "slc discover" and connect to it with the address
"mdns:NAME", for instance "slc send mdns:NAME hello". Standard tools see it
too: avahi-browse -r _slc._tcp, or dns-sd -B _slc._tcp.

If another node already advertises NAME, or the announcement fails, the
command says so and keeps trying with backoff.`,
		Example: `  slc advertise lab-camera
  slc advertise lab-camera --listen 0.0.0.0:7000 --interface eth0
  slc advertise test --listen 127.0.0.1:0 --interface lo     # this host only`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAdvertise(cmd.Context(), g, &nf, &df, args[0], listen, count)
		},
	}
	nf.addNameFlag(cmd)
	nf.addListenFlags(cmd)
	df.addFlags(cmd)
	cmd.Flags().StringVar(&listen, "listen", ":0", "TCP address to listen on (port 0 picks a free port)")
	cmd.Flags().IntVar(&count, "count", 0, "exit after this many messages (0: run until interrupted)")
	return cmd
}

func runAdvertise(ctx context.Context, g *globals, nf *nodeFlags, df *discoveryFlags, name, listen string, count int) error {
	out := g.newPrinter()
	n, err := startNode(g, out, nf.name, nil, nil, df.options()...)
	if err != nil {
		return err
	}
	defer n.close()
	addr, err := n.listen(ctx, listen, nf.addrFile)
	if err != nil {
		return err
	}
	switch err := n.Advertise(name); {
	case errors.Is(err, slc.ErrAdvertiseRetrying):
		out.line(n.label, "warn", "advertising failed", f("name", name), f("err", unprefixed(err)))
	case err != nil:
		return unprefixed(err)
	default:
		out.line(n.label, "info", "advertising", f("name", name), f("service", "_slc._tcp"), f("addr", addr))
	}
	for received := 0; count <= 0 || received < count; received++ {
		m, err := n.Receive(ctx)
		if err != nil {
			return endedByInterrupt(ctx, err)
		}
		out.line(n.label, "recv", "message", append([]field{f("id", m.ID), f("from", m.From)}, bodyFields(m)...)...)
	}
	if err := n.StopAdvertising(); err != nil {
		return err
	}
	if err := n.close(); err != nil {
		return err
	}
	return out.Err()
}
