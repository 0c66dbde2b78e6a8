package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc"
)

func TestStoreInspect(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A node whose peer stays away keeps its messages for it.
	r, err := slc.New(slc.WithName("inspect-recv"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := r.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := slc.New(slc.WithName("inspect-node"), slc.WithStore(dir), slc.WithRetries(slc.RetryForever))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect(ctx, addr.String()); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil { // a goodbye: c's session ends, and its store forgets the peer
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	res := runSLC(t, "store", "inspect", dir)
	if res.code != 0 || !strings.Contains(res.stdout, `node "inspect-node"`) || !strings.Contains(res.stdout, "checks: everything passed") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	res = runSLC(t, "--json", "store", "inspect", dir)
	var rep map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || rep["Name"] != "inspect-node" {
		t.Fatalf("json: %v %q", err, res.stdout)
	}

	// Damage is reported, with a non-zero exit.
	if err := os.Truncate(filepath.Join(dir, "consumed.log"), 10); err != nil {
		t.Fatal(err)
	}
	res = runSLC(t, "store", "inspect", dir)
	if res.code == 0 || !strings.Contains(res.stdout, "consumed.log") || !strings.Contains(res.stderr, "damaged") {
		t.Fatalf("damaged store: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	res = runSLC(t, "store", "inspect", filepath.Join(dir, "missing"))
	if res.code == 0 || res.stderr == "" {
		t.Fatalf("missing store: exit %d, stderr %q", res.code, res.stderr)
	}
}
