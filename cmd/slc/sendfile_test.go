package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// randomFile writes size random bytes to a new file in dir and returns its
// path and SHA-256.
func randomFile(t *testing.T, dir, name string, size int) (string, string) {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, len(buf))
		rand.Read(buf[:n])
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, hex.EncodeToString(h.Sum(nil))
}

// fileSHA256 returns the SHA-256 of a file.
func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkReceived checks that dir holds exactly name, with the SHA-256 want,
// and no partial or state file.
func checkReceived(t *testing.T, dir, name, want string) {
	t.Helper()
	if got := fileSHA256(t, filepath.Join(dir, name)); got != want {
		t.Errorf("received %s has SHA-256 %s, want %s", name, got, want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("%s holds %v, want only %s", dir, names, name)
	}
}

// num returns a JSON record's numeric field.
func num(t *testing.T, rec map[string]any, key string) int64 {
	t.Helper()
	v, ok := rec[key].(float64)
	if !ok {
		t.Fatalf("record %v has no number %q", rec, key)
	}
	return int64(v)
}

// startReceiver starts recv-file --once on a free port and returns it with
// its address.
func startReceiver(t *testing.T, dir string, extra ...string) (*proc, string) {
	t.Helper()
	args := append([]string{"recv-file", "--listen", "127.0.0.1:0", "--once", "--json", "--name", "rx", dir}, extra...)
	rx := start(t, "recv-file", args...)
	return rx, rx.listenAddr()
}

// TestSendFile sends a few MiB and checks the SHA-256 on both ends, the
// progress records, and that the receiver keeps no partial file.
func TestSendFile(t *testing.T) {
	t.Parallel()
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "incoming") // recv-file creates it
	const size = 5<<20 + 12345
	path, sum := randomFile(t, src, "scan 0042.tiff", size)
	rx, addr := startReceiver(t, dst)

	tx := start(t, "send-file", "send-file", addr, path, "--json", "--name", "tx", "--compress", "zstd")
	done, _ := tx.waitRecord(0, map[string]any{"kind": "done"})
	tx.expectExit(0)
	rx.expectExit(0)
	if done["sha256"] != sum || num(t, done, "size") != size || num(t, done, "sent") != size || num(t, done, "resumed_at") != 0 {
		t.Errorf("sender's done record: %v; want size %d, sent %d, sha256 %s", done, size, size, sum)
	}
	rdone, _ := rx.waitRecord(0, map[string]any{"kind": "done"})
	if rdone["sha256"] != sum || rdone["file"] != "scan 0042.tiff" || rdone["from"] != "tx" {
		t.Errorf("receiver's done record: %v", rdone)
	}
	checkReceived(t, dst, "scan 0042.tiff", sum)
	if n := len(tx.records(map[string]any{"kind": "progress"})); n < 5 {
		t.Errorf("sender printed %d progress records, want one per tenth of the file", n)
	}
	if n := len(rx.records(map[string]any{"kind": "progress"})); n < 5 {
		t.Errorf("receiver printed %d progress records, want one per tenth of the file", n)
	}
	for _, p := range []*proc{tx, rx} {
		if s := p.stderrText(); s != "" {
			t.Errorf("%s wrote to stderr (no bar without a terminal): %s", p.name, s)
		}
	}
}

// TestSendFileEmpty sends an empty file.
func TestSendFileEmpty(t *testing.T) {
	t.Parallel()
	src, dst := t.TempDir(), t.TempDir()
	path, sum := randomFile(t, src, "empty", 0)
	rx, addr := startReceiver(t, dst)
	if r := runSLC(t, "send-file", addr, path); r.code != 0 {
		t.Fatalf("send-file: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rx.expectExit(0)
	checkReceived(t, dst, "empty", sum)
}

// TestRecvFileRefuses checks that the receiver refuses names with a
// directory, "..", an absolute path or its reserved suffixes, and files
// that exist, and that the sender reports the refusal in one line.
func TestRecvFileRefuses(t *testing.T) {
	t.Parallel()
	src, dst := t.TempDir(), t.TempDir()
	path, _ := randomFile(t, src, "data.bin", 1000)
	if err := os.WriteFile(filepath.Join(dst, "exists.bin"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	rx := start(t, "recv-file", "recv-file", "--listen", "127.0.0.1:0", "--json", "--name", "rx", dst)
	addr := rx.listenAddr()
	for _, tc := range []struct{ as, want string }{
		{"../escape.bin", "only a base name"},
		{"sub/dir.bin", "only a base name"},
		{`..\escape.bin`, "only a base name"},
		{"/etc/passwd", "only a base name"},
		{"..", "invalid file name"},
		{"x.part", "reserved"},
		{"exists.bin", "already exists"},
	} {
		r := runSLC(t, "send-file", addr, path, "--as", tc.as)
		l := lines(r.stderr)
		if r.code != 1 || len(l) != 1 || !strings.Contains(l[0], "rx refused") || !strings.Contains(l[0], tc.want) {
			t.Errorf("send-file --as %q: exit %d, stderr %q; want 1 and one line with %q", tc.as, r.code, r.stderr, tc.want)
		}
	}
	rx.signal(os.Interrupt)
	rx.expectExit(0)
	if n := len(rx.records(map[string]any{"kind": "refused"})); n != 7 {
		t.Errorf("receiver printed %d refusals, want 7\n%s", n, rx.output())
	}
	if b, err := os.ReadFile(filepath.Join(dst, "exists.bin")); err != nil || string(b) != "old" {
		t.Errorf("exists.bin was changed: %q, %v", b, err)
	}
	entries, _ := os.ReadDir(dst)
	if len(entries) != 1 {
		t.Errorf("the receiver's directory holds %d entries, want only exists.bin", len(entries))
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dst), "escape.bin")); err == nil {
		t.Error("a file escaped the receiver's directory")
	}
}

func TestCheckFileName(t *testing.T) {
	for _, ok := range []string{"a", "scan 0042.tiff", ".hidden", "..a", "a..b", "ünïcode.txt", strings.Repeat("x", maxNameLen)} {
		if err := checkFileName(ok); err != nil {
			t.Errorf("checkFileName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "../a", "a/..", "/abs", `C:\x`, `a\b`, "a\x00b", "a\nb", "x.part", "x.part.state",
		strings.Repeat("x", maxNameLen+1), "bad\xffutf8"} {
		if err := checkFileName(bad); err == nil {
			t.Errorf("checkFileName(%q) = nil, want an error", bad)
		}
	}
}

// TestSendFileResumeAfterKill kills the sender in the middle of a transfer
// and runs it again: the second run resumes where the receiver stood and
// sends only the rest.
//
// To stop the transfer in the middle without racing it, the first sender
// goes through a relay that stops forwarding after pauseAt bytes: the
// sender then blocks on BufferCap, and the test kills it once the receiver
// reports that it has stored most of what came through.
func TestSendFileResumeAfterKill(t *testing.T) {
	t.Parallel()
	src, dst := t.TempDir(), t.TempDir()
	const size = 64 << 20
	const pauseAt = 24 << 20
	path, sum := randomFile(t, src, "big.bin", size)
	rx, addr := startReceiver(t, dst)
	relay := newTestRelay(t, addr, pauseAt, 0)

	tx1 := start(t, "send-file #1", "send-file", relay.addr(), path, "--json", "--name", "tx1")
	tx1.waitRecord(0, map[string]any{"kind": "info", "msg": "accepted", "resume_at": 0.0})
	// The receiver's progress records come at every tenth of the file:
	// 30% is below what the relay lets through.
	rx.waitRecordFunc(0, "progress of 30% or more", func(r map[string]any) bool {
		pc, _ := r["percent"].(float64)
		return r["kind"] == "progress" && pc >= 30
	})
	tx1.kill()
	if code := tx1.wait(); code != -1 {
		t.Fatalf("send-file #1 was not killed: exit code %d\n%s", code, tx1.output())
	}
	if recs := tx1.records(map[string]any{"kind": "done"}); len(recs) != 0 {
		t.Fatalf("send-file #1 finished before it was killed: %v", recs)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "big.bin"+stateSuffix)); err != nil || !bytes.Contains(b, []byte(sum)) {
		t.Errorf("no state file beside the partial file: %q, %v", b, err)
	}
	relay.close()

	tx2 := start(t, "send-file #2", "send-file", addr, path, "--json", "--name", "tx2")
	resuming, _ := tx2.waitRecordFunc(0, `a "resuming at offset N" record`, func(r map[string]any) bool {
		msg, _ := r["msg"].(string)
		return r["kind"] == "info" && strings.HasPrefix(msg, "resuming at offset ")
	})
	done, _ := tx2.waitRecord(0, map[string]any{"kind": "done"})
	tx2.expectExit(0)
	rx.expectExit(0)

	at := num(t, resuming, "offset")
	if at < 3*size/10 || at > pauseAt {
		t.Errorf("resumed at %d, want between %d (what the receiver reported) and %d (what the relay let through)",
			at, 3*size/10, pauseAt)
	}
	if sent := num(t, done, "sent"); sent != size-at || num(t, done, "resumed_at") != at {
		t.Errorf("send-file #2 sent %d bytes from %d, want the %d bytes after the resume offset", sent, num(t, done, "resumed_at"), size-at)
	}
	if done["sha256"] != sum {
		t.Errorf("send-file #2 done: sha256 %v, want %s", done["sha256"], sum)
	}
	offers := rx.records(map[string]any{"kind": "offer"})
	if len(offers) != 2 || offers[0]["from"] != "tx1" || offers[1]["from"] != "tx2" || num(t, offers[1], "resume_at") != at {
		t.Errorf("receiver offers: %v; want tx1's from 0 and tx2's from %d", offers, at)
	}
	checkReceived(t, dst, "big.bin", sum)
}

// TestSendFileSurvivesDroppedConnection cuts the connection in the middle
// of a transfer: slc reconnects and resumes the session, and the transfer
// goes on without being offered again or restarting.
func TestSendFileSurvivesDroppedConnection(t *testing.T) {
	t.Parallel()
	src, dst := t.TempDir(), t.TempDir()
	const size = 32 << 20
	const cutAt = 12 << 20
	path, sum := randomFile(t, src, "stream.bin", size)
	rx, addr := startReceiver(t, dst)
	relay := newTestRelay(t, addr, 0, cutAt)

	tx := start(t, "send-file", "send-file", relay.addr(), path, "--json", "--name", "tx")
	done, _ := tx.waitRecord(0, map[string]any{"kind": "done"})
	tx.expectExit(0)
	rx.expectExit(0)
	select {
	case <-relay.cutDone:
	default:
		t.Fatal("the relay did not cut the connection")
	}

	tx.waitRecord(0, map[string]any{"kind": "event", "msg": "PeerDisconnected", "peer": "rx", "reconnecting": true})
	tx.waitRecord(0, map[string]any{"kind": "event", "msg": "PeerConnected", "peer": "rx", "resumed": true})
	if n := len(tx.records(map[string]any{"kind": "info", "msg": "accepted"})); n != 1 {
		t.Errorf("the file was offered %d times, want once", n)
	}
	if n := len(rx.records(map[string]any{"kind": "offer"})); n != 1 {
		t.Errorf("the receiver saw %d offers, want 1", n)
	}
	if num(t, done, "sent") != size || num(t, done, "resumed_at") != 0 || done["sha256"] != sum {
		t.Errorf("done record %v: want %d bytes sent once from 0, sha256 %s", done, size, sum)
	}
	// slc re-sends what was not acknowledged at the cut (at most
	// BufferCap), not the file from the start.
	if up := relay.upBytes(); up >= size+cutAt {
		t.Errorf("%d bytes went through the relay for a %d-byte file cut at %d: the transfer restarted", up, size, cutAt)
	}
	checkReceived(t, dst, "stream.bin", sum)
}

// TestSendFileReceiverRestarts kills the receiver in the middle of a
// transfer and starts it again on the same address: the sender reconnects
// by itself, sees a new instance of the receiver, offers the file again,
// and the transfer resumes from the receiver's last checkpoint in
// NAME.part.state instead of from the start.
func TestSendFileReceiverRestarts(t *testing.T) {
	t.Parallel()
	src, dst := t.TempDir(), t.TempDir()
	const size = 64 << 20
	const pauseAt = 24 << 20
	path, sum := randomFile(t, src, "big.bin", size)
	rx1, addr := startReceiver(t, dst)
	relay := newTestRelay(t, addr, pauseAt, 0)

	tx := start(t, "send-file", "send-file", relay.addr(), path, "--json", "--name", "tx")
	// Past 30%, the receiver has made its first checkpoint (every 16 MiB).
	rx1.waitRecordFunc(0, "progress of 30% or more", func(r map[string]any) bool {
		pc, _ := r["percent"].(float64)
		return r["kind"] == "progress" && pc >= 30
	})
	rx1.kill()
	if code := rx1.wait(); code != -1 {
		t.Fatalf("recv-file #1 was not killed: exit code %d\n%s", code, rx1.output())
	}
	relay.unpause()

	rx2 := start(t, "recv-file #2", "recv-file", "--listen", addr, "--once", "--json", "--name", "rx", dst)
	rx2.listenAddr()
	tx.waitRecord(0, map[string]any{"kind": "info", "msg": "the receiver restarted: offering the file again"})
	resuming, _ := tx.waitRecordFunc(0, `a "resuming at offset N" record`, func(r map[string]any) bool {
		msg, _ := r["msg"].(string)
		return r["kind"] == "info" && strings.HasPrefix(msg, "resuming at offset ")
	})
	tx.waitRecord(0, map[string]any{"kind": "done"})
	tx.expectExit(0)
	rx2.expectExit(0)

	if at := num(t, resuming, "offset"); at < checkpointEvery || at >= size {
		t.Errorf("resumed at %d, want from the checkpoint at %d or later", at, checkpointEvery)
	}
	rdone, _ := rx2.waitRecord(0, map[string]any{"kind": "done"})
	if rdone["sha256"] != sum || num(t, rdone, "resumed_at") != num(t, resuming, "offset") {
		t.Errorf("receiver #2 done record: %v; want sha256 %s, resumed at %d", rdone, sum, num(t, resuming, "offset"))
	}
	checkReceived(t, dst, "big.bin", sum)
}

// TestRecvFileInterruptKeepsPartial interrupts recv-file in the middle of
// a transfer: it exits cleanly, records in NAME.part.state exactly how
// much of NAME.part it holds, and a new recv-file resumes from there when
// send-file runs again.
func TestRecvFileInterruptKeepsPartial(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on Windows")
	}
	t.Parallel()
	src, dst := t.TempDir(), t.TempDir()
	const size = 64 << 20
	path, sum := randomFile(t, src, "big.bin", size)
	rx1, addr := startReceiver(t, dst)
	relay := newTestRelay(t, addr, 24<<20, 0)

	tx1 := start(t, "send-file #1", "send-file", relay.addr(), path, "--json", "--name", "tx1")
	rx1.waitRecordFunc(0, "progress of 30% or more", func(r map[string]any) bool {
		pc, _ := r["percent"].(float64)
		return r["kind"] == "progress" && pc >= 30
	})
	rx1.signal(os.Interrupt)
	rx1.expectExit(0)
	kept, _ := rx1.waitRecord(0, map[string]any{"kind": "info", "msg": "kept the partial file", "file": "big.bin.part"})
	have := num(t, kept, "have")
	b, err := os.ReadFile(filepath.Join(dst, "big.bin"+stateSuffix))
	if err != nil {
		t.Fatal(err)
	}
	var st partState
	if err := json.Unmarshal(b, &st); err != nil || st.Have != have || st.SHA256 != sum || st.Size != size {
		t.Fatalf("state file %s (%v); want have=%d of %s", b, err, have, sum)
	}
	if fi, err := os.Stat(filepath.Join(dst, "big.bin"+partSuffix)); err != nil || fi.Size() < have {
		t.Fatalf("partial file: %v, %v; want at least %d bytes", fi, err, have)
	}
	// The first sender loses its receiver, which said goodbye.
	relay.unpause()
	if code := tx1.wait(); code != 1 {
		t.Errorf("send-file #1: exit code %d, want 1\n%s", code, tx1.output())
	}

	rx2, addr2 := startReceiver(t, dst)
	tx2 := start(t, "send-file #2", "send-file", addr2, path, "--json", "--name", "tx2")
	accepted, _ := tx2.waitRecord(0, map[string]any{"kind": "info", "msg": "accepted"})
	done, _ := tx2.waitRecord(0, map[string]any{"kind": "done"})
	tx2.expectExit(0)
	rx2.expectExit(0)
	if num(t, accepted, "resume_at") != have || num(t, done, "sent") != size-have {
		t.Errorf("send-file #2 resumed at %d and sent %d; want %d and %d", num(t, accepted, "resume_at"), num(t, done, "sent"), have, size-have)
	}
	checkReceived(t, dst, "big.bin", sum)
}
