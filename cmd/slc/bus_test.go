package main

import (
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// busAddr returns a loopback address whose port was free a moment ago,
// for a bus of the test's own.
func busAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestBusPubSub runs slc bus sub and slc bus pub as processes: the
// subscriber serves the bus, gets the events of its scope and subscopes
// as they are published, and not the others.
func TestBusPubSub(t *testing.T) {
	t.Parallel()
	addr := busAddr(t)
	sub := start(t, "sub", "bus", "sub", "--bus", addr, "--name", "sub", "--json", "--count", "4", "/robot/")
	sub.waitRecord(0, map[string]any{"kind": "info", "msg": "joined", "server": "sub", "serving": true})
	sub.waitRecord(0, map[string]any{"kind": "info", "msg": "subscribed", "scope": "/robot/"})

	r := runSLC(t, "bus", "pub", "--bus", addr, "--name", "arm", "/robot/arm/", "hello", "two words")
	if r.code != 0 {
		t.Fatalf("pub: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"joined bus=" + addr + " server=sub",
		"published id=arm/",
		`scope=/robot/arm/ schema=utf-8-string data="hello"`,
		`data="two words"`,
		"delivered events=2",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("pub output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, args := range [][]string{
		{"--as", "double", "/robot/arm/joint1/", "0.25"},
		{"/other/", "not for /robot/"},
		{"--as", "json", "--json", "/robot/", `{"battery":0.8}`},
	} {
		if r := runSLC(t, append([]string{"bus", "pub", "--bus", addr}, args...)...); r.code != 0 {
			t.Fatalf("pub %q: exit %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	sub.expectExit(0)
	recv := sub.records(map[string]any{"kind": "recv"})
	if len(recv) != 4 {
		t.Fatalf("%d events, want 4\n%s", len(recv), sub.output())
	}
	for i, want := range []map[string]any{
		{"msg": "/robot/arm/", "from": "arm", "schema": "utf-8-string", "data": "hello"},
		{"msg": "/robot/arm/", "from": "arm", "schema": "utf-8-string", "data": "two words"},
		{"msg": "/robot/arm/joint1/", "schema": "double", "data": 0.25},
		{"msg": "/robot/", "schema": "application/json", "data": map[string]any{"battery": 0.8}},
	} {
		for k, v := range want {
			if got := recv[i][k]; !reflect.DeepEqual(got, v) {
				t.Errorf("event %d: %s = %#v, want %#v", i, k, got, v)
			}
		}
		if id, _ := recv[i]["id"].(string); !strings.Contains(id, ":") || recv[i]["latency"] == nil {
			t.Errorf("event %d: %v", i, recv[i])
		}
	}
	if s := sub.stderrText(); s != "" {
		t.Errorf("sub wrote to stderr: %s", s)
	}
}

// TestBusServerKilled kills the subscriber that serves the bus: another
// subscriber takes over, says so, and gets the next events.
func TestBusServerKilled(t *testing.T) {
	t.Parallel()
	addr := busAddr(t)
	first := start(t, "first", "bus", "sub", "--bus", addr, "--name", "first", "--json", "-v", "/")
	first.waitRecord(0, map[string]any{"kind": "info", "msg": "subscribed"})
	second := start(t, "second", "bus", "sub", "--bus", addr, "--name", "second", "--json", "-v", "--count", "1", "/x/")
	second.waitRecord(0, map[string]any{"kind": "info", "msg": "joined", "server": "first"})
	second.waitRecord(0, map[string]any{"kind": "info", "msg": "subscribed"})
	first.kill()
	second.waitRecord(0, map[string]any{"kind": "info", "msg": "server", "server": "second", "serving": true})
	if r := runSLC(t, "bus", "pub", "--bus", addr, "/x/y/", "after"); r.code != 0 || !strings.Contains(r.stdout, "server=second") {
		t.Fatalf("pub: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	second.expectExit(0)
	if got := second.records(map[string]any{"kind": "recv", "msg": "/x/y/", "data": "after"}); len(got) != 1 {
		t.Errorf("the new server did not get the event\n%s", second.output())
	}
}

// TestBusList lists the participants of a bus.
func TestBusList(t *testing.T) {
	t.Parallel()
	addr := busAddr(t)
	sub := start(t, "sub", "bus", "sub", "--bus", addr, "--name", "watcher", "--json", "/robot/")
	sub.waitRecord(0, map[string]any{"kind": "info", "msg": "subscribed"})
	r := runSLC(t, "bus", "list", "--bus", addr, "--json")
	if r.code != 0 {
		t.Fatalf("list: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var members []map[string]any
	for _, l := range lines(r.stdout) {
		if rec, ok := parseRecord(l); ok && rec["kind"] == "member" {
			members = append(members, rec)
		}
	}
	if len(members) != 1 || members[0]["msg"] != "watcher" || members[0]["server"] != true ||
		members[0]["listeners"] != "/robot/" || members[0]["rank"] != 1.0 {
		t.Errorf("members %v\n%s", members, r.stdout)
	}
	sub.signal(os.Interrupt)
	sub.expectExit(0)
}

func TestBusErrors(t *testing.T) {
	t.Parallel()
	addr := busAddr(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bus", "pub", "robot", "x"}, "invalid scope"},
		{[]string{"bus", "pub", "/a//b/", "x"}, "empty component"},
		{[]string{"bus", "pub", "/__slc/x/", "x"}, "reserved"},
		{[]string{"bus", "pub", "--as", "int", "/a/", "many"}, "DATA 1"},
		{[]string{"bus", "pub", "--as", "json", "/a/", "{"}, "not valid JSON"},
		{[]string{"bus", "pub", "--as", "complex", "/a/", "1"}, "--as"},
		{[]string{"bus", "pub", "/a/"}, "requires at least 2 arg"},
		{[]string{"bus", "sub", "a b"}, "invalid scope"},
		{[]string{"bus", "sub", "--mode", "boss", "/"}, "--mode"},
		{[]string{"bus", "sub", "--bus", "nowhere", "/"}, "address"},
		{[]string{"bus", "sub", "--bus", addr, "--mode", "client", "--connect-timeout", "300ms", "/"}, "nobody serves it"},
	} {
		r := runSLC(t, tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) || len(lines(r.stderr)) != 1 {
			t.Errorf("slc %s: exit %d, stderr %q; want an error with %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
}
