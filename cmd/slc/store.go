package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc/store"
)

func init() { addCommand(newStoreCmd) }

func newStoreCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Look into a node's durable store (slc.WithStore)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "inspect DIR",
		Short: "Show what a store keeps, and check it, without changing it",
		Long: `inspect reads the store in DIR and prints the node's name and instance,
the unacknowledged messages it keeps for each peer, what it keeps from each
sender (the delivered watermark, messages not yet consumed, a partly
received message), and the result of its checks. It changes nothing, and
fails while another process has the store open.

It exits with status 1 when the store is damaged; Open with salvage
(store.Options.Salvage) sets the damaged parts aside and keeps the rest.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := store.Inspect(args[0])
			if err != nil {
				return err
			}
			if g.json {
				b, err := json.Marshal(r)
				if err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, string(b))
			} else {
				r.Print(g.stdout)
			}
			if len(r.Damage) > 0 {
				return errors.New("the store is damaged: see the checks above")
			}
			return nil
		},
	})
	return cmd
}
