package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc"
)

// TestAdvertiseAndDiscover runs "slc advertise" twice and "slc discover",
// all on lo (never mDNS on a real interface): discover lists both nodes,
// a node connects to one by name and its message is printed, and after
// Ctrl-C the name is gone.
func TestAdvertiseAndDiscover(t *testing.T) {
	t.Parallel()
	suffix := fmt.Sprint(os.Getpid())
	nameA, nameB := "cli-a-"+suffix, "cli-b-"+suffix
	a := start(t, "advertise A", "advertise", nameA, "--listen", "127.0.0.1:0", "-i", "lo", "--json", "--name", "cli-node-a-"+suffix)
	b := start(t, "advertise B", "advertise", nameB, "--listen", "127.0.0.1:0", "-i", "lo", "--json", "--name", "cli-node-b-"+suffix)
	advA, _ := a.waitRecord(0, map[string]any{"kind": "info", "msg": "advertising"})
	b.waitRecord(0, map[string]any{"kind": "info", "msg": "advertising"})

	r := runSLC(t, "discover", "-i", "lo", "--json", "--timeout", "1s")
	if r.code != 0 {
		t.Fatalf("discover: exit %d\n%s", r.code, r.stderr)
	}
	found := map[string]map[string]any{}
	for _, l := range lines(r.stdout) {
		if rec, ok := parseRecord(l); ok && rec["kind"] == "found" {
			found[rec["msg"].(string)] = rec
		}
	}
	for name, node := range map[string]string{nameA: "cli-node-a-" + suffix, nameB: "cli-node-b-" + suffix} {
		rec := found[name]
		if rec == nil || rec["peer"] != node || rec["port"] == nil {
			t.Fatalf("discover did not list %s as %s:\n%s", name, node, r.stdout)
		}
	}
	if addrs := fmt.Sprint(found[nameA]["addrs"]); !strings.Contains(addrs, advA["addr"].(string)) {
		t.Fatalf("addrs %s, the advertiser listens on %v", addrs, advA["addr"])
	}
	r = runSLC(t, "discover", nameB, "-i", "lo", "--timeout", "1s")
	if l := lines(r.stdout); r.code != 0 || len(l) != 1 || !strings.Contains(l[0], "found") || !strings.Contains(l[0], nameB) {
		t.Fatalf("discover %s: exit %d\n%s%s", nameB, r.code, r.stdout, r.stderr)
	}

	// Connect by name and send: the advertiser prints the message.
	c, err := slc.New(slc.WithName("cli-sender-"+suffix), slc.WithInterfaces("lo"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := c.Connect(ctx, "mdns:"+nameA)
	if err != nil {
		t.Fatal(err)
	}
	msgID, err := c.Send(ctx, "hello by name", id)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitAcknowledged(ctx, msgID, id); err != nil {
		t.Fatal(err)
	}
	a.waitRecord(0, map[string]any{"kind": "recv", "from": "cli-sender-" + suffix, "body": "hello by name"})

	a.signal(os.Interrupt)
	a.expectExit(0)
	r = runSLC(t, "discover", nameA, "-i", "lo", "--timeout", "700ms")
	if r.code != 1 || !strings.Contains(r.stderr, "no node advertises") {
		t.Fatalf("discover after the advertiser stopped: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	b.signal(os.Interrupt)
	b.expectExit(0)
}

// TestDiscoverBadFlags: bad arguments are refused. Each command names lo,
// so that one accepted by mistake still sends no mDNS on a real interface.
func TestDiscoverBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"discover", "--timeout", "0", "-i", "lo"},
		{"discover", "a", "b", "-i", "lo"},
		{"advertise", "-i", "lo"},
		{"advertise", "x", "--listen", "unix:" + t.TempDir() + "/s", "-i", "lo"},
	} {
		r := runSLC(t, args...)
		if r.code == 0 || !strings.HasPrefix(r.stderr, "slc: ") {
			t.Errorf("slc %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

// TestAdvertiseRetries: when the registration fails (here: the interface
// does not exist, yet), advertise says so and keeps running, retrying.
func TestAdvertiseRetries(t *testing.T) {
	t.Parallel()
	p := start(t, "advertise", "advertise", "x", "--listen", "127.0.0.1:0", "-i", "slc-no-such-if", "--json")
	rec, _ := p.waitRecord(0, map[string]any{"kind": "warn", "msg": "advertising failed"})
	if err, _ := rec["err"].(string); !strings.Contains(err, "slc-no-such-if") || !strings.Contains(err, "retrying") {
		t.Fatalf("warning %v", rec)
	}
	p.signal(os.Interrupt)
	p.expectExit(0)
}
