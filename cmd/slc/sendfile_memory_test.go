//go:build linux

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSendFileStreams sends a file far larger than either process may
// hold, and checks the peak resident memory of both (getrusage's maxrss,
// in KiB on Linux): the file travels in chunks and never sits in memory
// whole.
func TestSendFileStreams(t *testing.T) {
	t.Parallel()
	const size = 512 << 20
	const limit = size / 2 // each process must stay under half the file
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "incoming")
	path := filepath.Join(src, "volume.raw")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file: no disk space, and its SHA-256 is that of zeros.
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	h := sha256.New()
	zero := make([]byte, 1<<20)
	for range size / len(zero) {
		h.Write(zero)
	}
	sum := hex.EncodeToString(h.Sum(nil))

	rx, addr := startReceiver(t, dst)
	tx := start(t, "send-file", "send-file", addr, path, "--json", "--name", "tx")
	done, _ := tx.waitRecord(0, map[string]any{"kind": "done"})
	tx.expectExit(0)
	rx.expectExit(0)
	if done["sha256"] != sum || num(t, done, "size") != size {
		t.Fatalf("sender's done record: %v", done)
	}
	checkReceived(t, dst, "volume.raw", sum)
	for _, p := range []*proc{tx, rx} {
		ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			t.Fatalf("%s: no rusage", p.name)
		}
		peak := int64(ru.Maxrss) << 10 // KiB on Linux
		t.Logf("%s: peak resident memory %d MiB for a %d MiB file", p.name, peak>>20, size>>20)
		if peak >= limit {
			t.Errorf("%s: peak resident memory %d MiB; a streamed %d MiB file must stay under %d MiB", p.name, peak>>20, size>>20, limit>>20)
		}
	}
}
