package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestListenSend drives slc listen and slc send as two processes: strings,
// JSON bodies and raw bytes arrive as they were sent, and send reports
// each message's acknowledgement.
func TestListenSend(t *testing.T) {
	t.Parallel()
	ln := start(t, "listen", "listen", "127.0.0.1:0", "--json", "--name", "cam", "--count", "5")
	addr := ln.listenAddr()

	r := runSLC(t, "send", addr, "hello", "two words", "--name", "ws")
	if r.code != 0 {
		t.Fatalf("send: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"connected peer=cam",
		`sent id=1 to=cam body="hello"`,
		`sent id=2 to=cam body="two words"`,
		"acknowledged id=1 peer=cam",
		"acknowledged id=2 peer=cam",
		"disconnected peer=cam sent=2 acknowledged=2",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("send output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.stderr != "" {
		t.Errorf("send wrote to stderr: %s", r.stderr)
	}

	r = runSLC(t, "send", addr, "--json-body", `{"sensor":"t1","celsius":21.5,"tags":["a","b"],"n":3}`, "--name", "ws-json")
	if r.code != 0 {
		t.Fatalf("send --json-body: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runSLC(t, "send", addr, "--raw", "plain bytes", "\xff\xfe\x01binary", "--name", "ws-raw", "--json")
	if r.code != 0 {
		t.Fatalf("send --raw: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var acks int
	for _, l := range lines(r.stdout) {
		if rec, ok := parseRecord(l); !ok {
			t.Errorf("send --json: not a JSON record: %s", l)
		} else if rec["kind"] == "ack" {
			acks++
		}
	}
	if acks != 2 {
		t.Errorf("send --json: %d ack records, want 2:\n%s", acks, r.stdout)
	}

	ln.expectExit(0) // --count 5
	msgs := ln.records(map[string]any{"kind": "recv"})
	if len(msgs) != 5 {
		t.Fatalf("listen printed %d messages, want 5\n%s", len(msgs), ln.output())
	}
	for i, want := range []map[string]any{
		{"from": "ws", "id": 1.0, "body": "hello"},
		{"from": "ws", "id": 2.0, "body": "two words"},
		{"from": "ws-json", "body": map[string]any{"sensor": "t1", "celsius": 21.5, "tags": []any{"a", "b"}, "n": 3.0}},
		{"from": "ws-raw", "size": 11.0, "text": "plain bytes"},
		{"from": "ws-raw", "size": 9.0, "hex": "fffe0162696e617279"},
	} {
		for k, v := range want {
			if !reflect.DeepEqual(msgs[i][k], v) {
				t.Errorf("message %d: %s = %#v, want %#v", i+1, k, msgs[i][k], v)
			}
		}
	}
	for _, ev := range []string{"PeerConnected", "PeerDisconnected"} {
		if len(ln.records(map[string]any{"kind": "event", "msg": ev, "peer": "ws"})) == 0 {
			t.Errorf("listen printed no %s event for ws\n%s", ev, ln.output())
		}
	}
	if s := ln.stderrText(); s != "" {
		t.Errorf("listen wrote to stderr: %s", s)
	}
}

// TestListenTextAndAddrFile checks the text output and --addr-file, and
// that Ctrl-C ends listen cleanly.
func TestListenTextAndAddrFile(t *testing.T) {
	t.Parallel()
	addrFile := t.TempDir() + "/addr"
	ln := start(t, "listen", "listen", "127.0.0.1:0", "--name", "cam", "--addr-file", addrFile)
	l, _ := ln.waitLine(0, "the listening line", func(l string) bool { return strings.Contains(l, "listening addr=") })
	addr := strings.TrimSpace(l[strings.Index(l, "addr=")+len("addr="):])
	b, err := os.ReadFile(addrFile)
	if err != nil || strings.TrimSpace(string(b)) != addr {
		t.Fatalf("--addr-file holds %q (%v), want %q", b, err, addr)
	}
	if r := runSLC(t, "send", addr, "héllo wörld", "--name", "ws"); r.code != 0 {
		t.Fatalf("send: exit %d\n%s", r.code, r.stderr)
	}
	ln.waitLine(0, "the message", func(l string) bool {
		return strings.Contains(l, `recv    message id=1 from=ws body="héllo wörld"`)
	})
	ln.signal(os.Interrupt)
	ln.expectExit(0)
	if s := ln.stderrText(); s != "" {
		t.Errorf("interrupted listen wrote to stderr: %s", s)
	}
}

// TestSendErrors checks that send fails with one line on stderr and a
// non-zero exit code.
func TestSendErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "127.0.0.1:1", "x", "--connect-timeout", "300ms"}, "connect to 127.0.0.1:1: no connection within 300ms"},
		{[]string{"send", "127.0.0.1:1", "--json-body", "{not json"}, "message 1 is not valid JSON"},
		{[]string{"send", "127.0.0.1:1", "--json-body", "1 2"}, "more than one JSON value"},
		{[]string{"send", "127.0.0.1:1", "--raw", "--json-body", "x"}, "[json-body raw] were all set"},
		{[]string{"send", "127.0.0.1:1"}, "requires at least 2 arg(s)"},
		{[]string{"listen", "256.0.0.1:0"}, "listen on 256.0.0.1:0"},
		{[]string{"--compress", "lz4", "send", "127.0.0.1:1", "x"}, `invalid argument "lz4" for "--compress" flag: want one of none, s2, zstd, gzip`},
	} {
		r := runSLC(t, tc.args...)
		l := lines(r.stderr)
		if r.code == 0 || len(l) != 1 || !strings.HasPrefix(l[0], "slc: ") || !strings.Contains(l[0], tc.want) {
			t.Errorf("slc %s: exit %d, stderr %q; want a non-zero exit and one line with %q",
				strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
}

// TestCompress sends with every --compress value and checks the messages
// arrive intact.
func TestCompress(t *testing.T) {
	t.Parallel()
	ln := start(t, "listen", "listen", "127.0.0.1:0", "--json", "--name", "cam", "--count", "4")
	addr := ln.listenAddr()
	body := strings.Repeat("compressible text ", 200)
	for _, c := range compressors {
		if r := runSLC(t, "send", addr, body, "--compress", c, "--name", "ws-"+c); r.code != 0 {
			t.Fatalf("send --compress %s: exit %d\n%s", c, r.code, r.stderr)
		}
	}
	ln.expectExit(0)
	for _, c := range compressors {
		recs := ln.records(map[string]any{"kind": "recv", "from": "ws-" + c})
		if len(recs) != 1 || recs[0]["body"] != body {
			t.Errorf("--compress %s: received %v", c, recs)
		}
	}
}

// TestListenSendSecure checks that listen and send run their nodes with the
// global secure-mode flags: a plain sender and a key that is not
// authorized under its name are refused with one line, an authorized one
// gets through.
func TestListenSendSecure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "authorized_keys")
	var authorized strings.Builder
	for _, name := range []string{"rx", "tx"} {
		r := runSLC(t, "keygen", "--name", name, filepath.Join(dir, name+".key"))
		if r.code != 0 {
			t.Fatalf("keygen: exit %d: %s", r.code, r.stderr)
		}
		authorized.WriteString(r.stdout)
	}
	if err := os.WriteFile(keys, []byte(authorized.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	secure := func(name string) []string {
		return []string{"--identity", filepath.Join(dir, name+".key"), "--authorized-keys", keys}
	}
	ln := start(t, "listen", append(secure("rx"), "listen", "127.0.0.1:0", "--json", "--name", "rx", "--count", "1")...)
	addr := ln.listenAddr()

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"send", addr, "plain", "--name", "tx"}, "security mode mismatch"},
		{append(secure("tx"), "send", addr, "wrong name", "--name", "intruder"), "unauthorized"},
	} {
		r := runSLC(t, tc.args...)
		l := lines(r.stderr)
		if r.code != 1 || len(l) != 1 || !strings.Contains(l[0], tc.want) {
			t.Errorf("slc %s: exit %d, stderr %q; want 1 and one line with %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
	if r := runSLC(t, append(secure("tx"), "send", addr, "secret", "--name", "tx")...); r.code != 0 {
		t.Fatalf("secure send: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	ln.expectExit(0)
	if recs := ln.records(map[string]any{"kind": "recv"}); len(recs) != 1 || recs[0]["body"] != "secret" || recs[0]["from"] != "tx" {
		t.Errorf("listen received %v, want only tx's secret", recs)
	}
	if n := len(ln.records(map[string]any{"kind": "event", "msg": "HandshakeRejected"})); n != 2 {
		t.Errorf("listen printed %d HandshakeRejected events, want 2\n%s", n, ln.output())
	}
}
