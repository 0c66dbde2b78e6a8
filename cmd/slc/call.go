package main

// slc call, and what call, describe and watch share: a node that connects
// to the rpc node NODE and talks to it with package rpc.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/rpc"
)

func init() { addCommand(newCallCmd) }

// rpcFlags are the flags of the commands that talk to an rpc node.
type rpcFlags struct {
	nodeFlags
	connect string
}

func (rf *rpcFlags) add(cmd *cobra.Command) {
	rf.addNameFlag(cmd)
	rf.addConnectFlags(cmd)
	cmd.Flags().StringVarP(&rf.connect, "connect", "c", "", `the address of NODE ("host:port" or "unix:/path"); required`)
	_ = cmd.MarkFlagRequired("connect")
}

// rpcNode is a command's node, connected to the rpc node it talks to.
type rpcNode struct {
	*node
	rn   *rpc.Node
	peer slc.PeerID
}

// close closes the rpc node, then the communicator.
func (r *rpcNode) close() error {
	r.rn.Close()
	return r.node.close()
}

// startRPC starts a node, connects it to rf.connect and checks that the
// node there is target (any node when target is "") and an rpc node. slc's events are printed with -v
// only, unless show says otherwise.
func startRPC(ctx context.Context, g *globals, out *printer, rf *rpcFlags, target slc.PeerID, show func(ev any) bool,
	extra ...slc.Option) (*rpcNode, error) {
	quiet := func(ev any) bool { return !g.verbose && (show == nil || !show(ev)) }
	n, err := startNode(g, out, rf.name, quiet, nil, extra...)
	if err != nil {
		return nil, err
	}
	rn, err := rpc.New(n.Communicator)
	if err != nil {
		n.close()
		return nil, err
	}
	r := &rpcNode{node: n, rn: rn}
	fail := func(err error) (*rpcNode, error) {
		r.close()
		return nil, err
	}
	peer, err := n.connect(ctx, rf.connect, rf.connectTimeout)
	if err != nil {
		return fail(err)
	}
	if target != "" && peer != target {
		return fail(fmt.Errorf("the node at %s is %q, not %q", rf.connect, peer, target))
	}
	r.peer = peer
	// The node says hello when the session starts: until then it is not
	// known as an rpc node.
	hctx := ctx
	if rf.connectTimeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, rf.connectTimeout)
		defer cancel()
	}
	if _, err := rn.Describe(hctx, peer); err != nil {
		if ctx.Err() == nil && errors.Is(err, rpc.ErrTimeout) {
			return fail(fmt.Errorf("%s does not answer as an rpc node (no hello within %v)", peer, rf.connectTimeout))
		}
		return fail(err)
	}
	return r, nil
}

// connectionEvent reports the events of a session's state, which watch
// prints.
func connectionEvent(ev any) bool {
	switch ev.(type) {
	case *actors.PeerConnected, *actors.PeerDisconnected, *actors.PeerReconnecting, *actors.PeerLost:
		return true
	}
	return false
}

func newCallCmd(g *globals) *cobra.Command {
	var (
		rf      rpcFlags
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "call NODE PATH IFACE METHOD [key=value...]",
		Short: "Call a method of an rpc node and print its results",
		Long: `call connects to the rpc node NODE (at the address given with --connect), calls
METHOD of interface IFACE at PATH with the arguments key=value, and prints the
results. A failed call prints the error and exits with status 1.

Values are converted to the types the interface declares for its arguments
(see "slc describe"): int, float, bool and string as written, list and map as
JSON, bytes as the text's bytes. An argument without a declared type is
parsed as JSON when it is valid JSON, and sent as a string otherwise.`,
		Example: `  slc call --connect 127.0.0.1:7000 timer /timer com.example.Timer add name=tea seconds=180
  slc call -c 127.0.0.1:7000 timer /timer com.example.Timer list --json`,
		Args: cobra.MinimumNArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCall(cmd.Context(), g, &rf, timeout, args[0], args[1], args[2], args[3], args[4:])
		},
	}
	rf.add(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second,
		"give up on the call after this long (0: no limit); the remote handler gets the same deadline")
	return cmd
}

func runCall(ctx context.Context, g *globals, rf *rpcFlags, timeout time.Duration, node, path, iface, method string, kvs []string) error {
	if !rpc.ValidPath(path) {
		return fmt.Errorf("invalid path %q: want \"/\" or \"/a/b\"", path)
	}
	raw, err := splitArgs(kvs)
	if err != nil {
		return err
	}
	out := g.newPrinter()
	r, err := startRPC(ctx, g, out, rf, slc.PeerID(node), nil)
	if err != nil {
		return err
	}
	defer r.close()
	d, err := r.rn.Describe(ctx, r.peer)
	if err != nil {
		return err
	}
	args, err := convertArgs(raw, declaredIn(d, path, iface, method))
	if err != nil {
		return err
	}
	cctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	res, err := r.rn.Call(cctx, r.peer, path, iface, method, args)
	if err != nil {
		return err
	}
	out.line(r.label, "call", "returned", f("peer", r.peer), f("path", path), f("method", iface+"."+method),
		f("out", bodyValue{res}))
	if err := r.close(); err != nil {
		return err
	}
	return out.Err()
}

// splitArgs splits key=value arguments.
func splitArgs(kvs []string) ([][2]string, error) {
	seen := map[string]bool{}
	out := make([][2]string, 0, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok || k == "":
			return nil, fmt.Errorf("argument %q: want key=value", kv)
		case seen[k]:
			return nil, fmt.Errorf("argument %q given twice", k)
		}
		seen[k] = true
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// declaredIn returns the in-arguments of a method as the description
// declares them, or nil when it has no such method.
func declaredIn(d *rpc.NodeDescription, path, iface, method string) []rpc.Argument {
	for _, p := range d.Paths {
		if p.Path != path {
			continue
		}
		for _, i := range p.Interfaces {
			if i.Name == iface {
				if m, ok := i.Method(method); ok {
					return m.In
				}
			}
		}
	}
	return nil
}

// convertArgs converts key=value strings to the declared types.
func convertArgs(raw [][2]string, decl []rpc.Argument) (rpc.Args, error) {
	types := map[string]string{}
	for _, a := range decl {
		types[a.Name] = a.Type
	}
	args := make(rpc.Args, len(raw))
	for _, kv := range raw {
		v, err := convertArg(kv[1], types[kv[0]])
		if err != nil {
			return nil, fmt.Errorf("argument %s: %w", kv[0], err)
		}
		args[kv[0]] = v
	}
	return args, nil
}

func convertArg(s, typ string) (any, error) {
	switch typ {
	case rpc.TypeString:
		return s, nil
	case rpc.TypeBytes:
		return []byte(s), nil
	case rpc.TypeInt:
		i, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an int", s)
		}
		return i, nil
	case rpc.TypeFloat:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a float", s)
		}
		return x, nil
	case rpc.TypeBool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a bool", s)
		}
		return b, nil
	case rpc.TypeList, rpc.TypeMap:
		v, err := parseJSONBody(s)
		if err != nil {
			return nil, fmt.Errorf("a %s is written in JSON: %w", typ, err)
		}
		return v, nil
	}
	if v, err := parseJSONBody(s); err == nil {
		return v, nil
	}
	return s, nil
}

// signature renders arguments as "name type, ...".
func signature(args []rpc.Argument) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = a.Name
		if a.Type != "" {
			parts[i] += " " + a.Type
		}
	}
	return strings.Join(parts, ", ")
}
