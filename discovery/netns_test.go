package discovery_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// netnsPair makes two network namespaces joined by a veth pair, as two
// hosts on one link: 10.231.<n>.1 and .2. It returns the command prefixes
// that run a program in each, or ok false when namespaces cannot be made
// here. The namespaces are removed when the test ends, even if it fails.
func netnsPair(t *testing.T) (a, b []string, ok bool) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Logf("network namespaces unavailable (no ip command): running the loopback form")
		return nil, nil, false
	}
	id := os.Getpid() % 100000
	nsA, nsB := fmt.Sprintf("slcd%d-a", id), fmt.Sprintf("slcd%d-b", id)
	vA, vB := fmt.Sprintf("sd%da", id), fmt.Sprintf("sd%db", id)
	run := func(args ...string) error {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	cleanup := func() {
		run("netns", "del", nsA)
		run("netns", "del", nsB)
	}
	cleanup() // left over from a killed run
	if err := run("netns", "add", nsA); err != nil {
		t.Logf("network namespaces unavailable (%v): running the loopback form", err)
		return nil, nil, false
	}
	t.Cleanup(cleanup)
	subnet := 10 + id%200
	for _, args := range [][]string{
		{"netns", "add", nsB},
		{"link", "add", vA, "type", "veth", "peer", "name", vB},
		{"link", "set", vA, "netns", nsA},
		{"link", "set", vB, "netns", nsB},
		{"-n", nsA, "addr", "add", fmt.Sprintf("10.231.%d.1/24", subnet), "dev", vA},
		{"-n", nsB, "addr", "add", fmt.Sprintf("10.231.%d.2/24", subnet), "dev", vB},
		{"-n", nsA, "link", "set", vA, "up"},
		{"-n", nsB, "link", "set", vB, "up"},
		{"-n", nsA, "link", "set", "lo", "up"},
		{"-n", nsB, "link", "set", "lo", "up"},
	} {
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"ip", "netns", "exec", nsA}, []string{"ip", "netns", "exec", nsB}, true
}

// TestAcrossHosts: a node advertises from one network namespace, with the
// default interface choice (every multicast-capable interface: its veth),
// and a node in another namespace finds it by name over the veth link,
// connects and exchanges a message. Where namespaces cannot be made, the
// same runs on lo between two processes.
func TestAcrossHosts(t *testing.T) {
	a, b, ok := netnsPair(t)
	var iface []string
	if !ok {
		iface = []string{"-iface", "lo"}
	}
	name := fmt.Sprintf("across-%d", os.Getpid())
	adv, ready := advertiser(t, a, name, append([]string{"-listen", "0.0.0.0:0", "-v"}, iface...)...)
	d := startProc(t, b, append([]string{"discover", "-name", name, "-timeout", "1s"}, iface...)...).next(30 * time.Second)
	svcs, _ := d["services"].([]any)
	if d["ok"] != true || len(svcs) != 1 {
		t.Fatalf("discover from the other host: %v", d)
	}
	addrs := fmt.Sprint(svcs[0].(map[string]any)["addrs"])
	if ok && (!strings.Contains(addrs, "10.231.") || strings.Contains(addrs, "127.0.0.1")) {
		t.Fatalf("advertised addresses %s: want the veth address only", addrs)
	}
	t.Logf("found %s at %s", name, addrs)
	con := startProc(t, b, append([]string{"connect", "-name", name, "-timeout", "15s", "-v"}, iface...)...)
	if r := con.next(30 * time.Second); r["ok"] != true || r["peer"] != ready["node"] {
		t.Fatalf("connect from the other host: %v; stderr:\n%s\nadvertiser's stderr:\n%s", r, con.stderr.String(), adv.stderr.String())
	}
	adv.stop()
	d = startProc(t, b, append([]string{"discover", "-name", name, "-timeout", "1s"}, iface...)...).next(30 * time.Second)
	if svcs, _ := d["services"].([]any); d["ok"] != true || len(svcs) != 0 {
		t.Fatalf("after the goodbye, the other host found %v", d)
	}
}
