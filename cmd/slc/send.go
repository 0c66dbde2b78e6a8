package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc"
)

func init() { addCommand(newSendCmd) }

// sendFlags are the flags of slc send.
type sendFlags struct {
	nodeFlags
	raw      bool
	jsonBody bool
}

func newSendCmd(g *globals) *cobra.Command {
	var sf sendFlags
	cmd := &cobra.Command{
		Use:   "send ADDR MSG...",
		Short: "Connect to ADDR, send each MSG and wait until each is acknowledged",
		Long: `send starts a node, connects to the node at ADDR, sends every MSG in order
and waits until the remote has acknowledged each one (it is in the remote's
mailbox). It prints the ID of each message as it is sent and acknowledged,
then disconnects cleanly.

By default each MSG is sent as a string. With --raw it is sent as raw bytes,
without serialization; with --json-body it is parsed as JSON and the value
(object, array, number, ...) is sent, so that the receiver gets maps, slices
and numbers instead of a string.`,
		Example: `  slc send 127.0.0.1:7000 hello "hello again"
  slc send 127.0.0.1:7000 --json-body '{"sensor":"t1","celsius":21.5}' '[1,2,3]'
  slc send unix:/tmp/slc.sock --raw 'some bytes'`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSend(cmd.Context(), g, &sf, args[0], args[1:])
		},
	}
	sf.addNameFlag(cmd)
	sf.addConnectFlags(cmd)
	cmd.Flags().BoolVar(&sf.raw, "raw", false, "send each MSG as raw bytes, without serialization")
	cmd.Flags().BoolVar(&sf.jsonBody, "json-body", false, "parse each MSG as JSON and send the value")
	cmd.MarkFlagsMutuallyExclusive("raw", "json-body")
	return cmd
}

func runSend(ctx context.Context, g *globals, sf *sendFlags, addr string, msgs []string) error {
	// Parse every body before connecting: a typo fails at once.
	bodies := make([]any, len(msgs))
	for i, s := range msgs {
		switch {
		case sf.raw:
			bodies[i] = []byte(s)
		case sf.jsonBody:
			v, err := parseJSONBody(s)
			if err != nil {
				return fmt.Errorf("message %d is not valid JSON: %w", i+1, err)
			}
			bodies[i] = v
		default:
			bodies[i] = s
		}
	}

	out := g.newPrinter()
	n, err := startNode(g, out, sf.name, nil, nil)
	if err != nil {
		return err
	}
	defer n.close()
	peer, err := n.connect(ctx, addr, sf.connectTimeout)
	if err != nil {
		return err
	}
	ids := make([]slc.MsgID, len(bodies))
	for i, body := range bodies {
		var id slc.MsgID
		if b, ok := body.([]byte); ok {
			id, err = n.SendRaw(ctx, b, peer)
		} else {
			id, err = n.Send(ctx, body, peer)
		}
		if err != nil {
			return fmt.Errorf("send message %d: %w", i+1, err)
		}
		ids[i] = id
		fields := []field{f("id", id), f("to", peer)}
		if b, ok := body.([]byte); ok {
			fields = append(append(fields, f("size", len(b))), rawPreview(b)...)
		} else {
			fields = append(fields, f("body", bodyValue{body}))
		}
		out.line(n.label, "send", "sent", fields...)
	}
	for _, id := range ids {
		if err := n.WaitAcknowledged(ctx, id, peer); err != nil {
			return fmt.Errorf("message %d: %w", id, err)
		}
		out.line(n.label, "ack", "acknowledged", f("id", id), f("peer", peer))
	}
	// Every message is acknowledged: a peer that has already ended the
	// session (it said goodbye) is disconnected too.
	if err := n.Disconnect(ctx, peer); err != nil && !errors.Is(err, slc.ErrUnknownPeer) && !errors.Is(err, slc.ErrDisconnected) {
		return fmt.Errorf("disconnect from %s: %w", peer, err)
	}
	out.line(n.label, "info", "disconnected", f("peer", peer), f("sent", len(ids)), f("acknowledged", len(ids)))
	if err := n.close(); err != nil {
		return err
	}
	return out.Err()
}

// parseJSONBody parses one JSON value. Numbers become int64 when they are
// integers that fit, float64 otherwise, so that a receiver gets 3 rather
// than 3.0.
func parseJSONBody(s string) (any, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one JSON value")
	}
	return convertNumbers(v), nil
}

func convertNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		fl, _ := x.Float64()
		return fl
	case map[string]any:
		for k, e := range x {
			x[k] = convertNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = convertNumbers(e)
		}
	}
	return v
}
