package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/secure"
)

func init() { addCommand(newKeygenCmd) }

func newKeygenCmd(g *globals) *cobra.Command {
	var (
		show, force bool
		name        string
	)
	cmd := &cobra.Command{
		Use:   "keygen FILE",
		Short: "Make a node's key pair for secure mode, or show the public key of one",
		Long: `keygen makes a new Curve25519 key pair, writes the private key to FILE
(mode 0600: keep it secret) and prints the public key. Give the file to the
node with --identity, and the public key to the nodes that should trust it.

What it prints is a line for an authorized-keys file, after comment lines
with the fingerprint, so it can be appended to one directly:

  slc keygen --name lab-camera camera.key >> authorized_keys

With --show it prints the public key of an existing private key file.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name != "" && !wire.ValidName(name) {
				return fmt.Errorf("invalid node name %q", name)
			}
			return runKeygen(g, args[0], name, show, force)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&show, "show", false, "print the public key of the existing private key FILE instead of making one")
	f.BoolVar(&force, "force", false, "replace FILE if it exists")
	f.StringVar(&name, "name", "", "the node `name` to put after the key: the only name that key may then use")
	return cmd
}

func runKeygen(g *globals, path, name string, show, force bool) error {
	var id *secure.Identity
	var err error
	if show {
		if force {
			return errors.New("--force makes no sense with --show")
		}
		if id, err = secure.LoadIdentity(path); err != nil {
			return err
		}
	} else {
		if !force && fileExists(path) {
			return fmt.Errorf("%s already exists: not overwriting a key (use --force to replace it)", path)
		}
		if id, err = secure.GenerateIdentity(); err != nil {
			return err
		}
		if force {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if err := id.Save(path); err != nil {
			return err
		}
	}
	return printPublicKey(g.stdout, g.json, path, name, id.PublicKey(), !show)
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// printPublicKey prints the key as an authorized-keys line after comment
// lines, or as one JSON object.
func printPublicKey(w io.Writer, jsonOut bool, path, name string, pk secure.PublicKey, wrote bool) error {
	if jsonOut {
		obj := map[string]any{"file": path, "public_key": pk.String(), "fingerprint": pk.Fingerprint(), "created": wrote}
		if name != "" {
			obj["name"] = name
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	line := secure.AuthorizedKey{Key: pk, Name: name}.String()
	var err error
	if wrote {
		_, err = fmt.Fprintf(w, "# wrote the private key to %s (mode 0600): keep it secret\n", path)
	}
	if err == nil {
		_, err = fmt.Fprintf(w, "# public key of %s, fingerprint %s\n%s\n", path, pk.Fingerprint(), line)
	}
	return err
}
