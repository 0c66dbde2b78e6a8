//go:build linux

package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// peakWatcher polls a process's VmHWM (the peak resident set of its
// address space since exec) until stopped, and keeps the highest value.
// (getrusage's maxrss of a child is no use here: it starts from the
// parent's resident set at fork.)
type peakWatcher struct {
	stop chan struct{}
	wg   sync.WaitGroup
	peak int64 // bytes
}

func watchPeak(pid int) *peakWatcher {
	w := &peakWatcher{stop: make(chan struct{})}
	path := fmt.Sprintf("/proc/%d/status", pid)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if v, ok := vmHWM(path); ok {
				w.peak = max(w.peak, v)
			}
			select {
			case <-t.C:
			case <-w.stop:
				return
			}
		}
	}()
	return w
}

// result stops the watcher and returns the peak it saw.
func (w *peakWatcher) result() int64 {
	close(w.stop)
	w.wg.Wait()
	return w.peak
}

func vmHWM(path string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// TestSendFileStreams sends a file far larger than either process may
// hold, and checks the peak resident memory of both: the file travels in
// chunks and never sits in memory whole.
func TestSendFileStreams(t *testing.T) {
	t.Parallel()
	const size = 512 << 20
	const limit = size * 3 / 4 // holding the file whole would take more
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
	rxPeak := watchPeak(rx.cmd.Process.Pid)
	tx := start(t, "send-file", "send-file", addr, path, "--json", "--name", "tx")
	txPeak := watchPeak(tx.cmd.Process.Pid)
	done, _ := tx.waitRecord(0, map[string]any{"kind": "done"})
	rx.waitRecord(0, map[string]any{"kind": "done"})
	peaks := map[string]int64{"send-file": txPeak.result(), "recv-file": rxPeak.result()}
	tx.expectExit(0)
	rx.expectExit(0)
	if done["sha256"] != sum || num(t, done, "size") != size {
		t.Fatalf("sender's done record: %v", done)
	}
	checkReceived(t, dst, "volume.raw", sum)
	for name, peak := range peaks {
		t.Logf("%s: peak resident memory %d MiB for a %d MiB file", name, peak>>20, size>>20)
		if peak == 0 {
			t.Errorf("%s: no VmHWM read from /proc", name)
		}
		if peak >= limit {
			t.Errorf("%s: peak resident memory %d MiB; a streamed %d MiB file must stay under %d MiB", name, peak>>20, size>>20, limit>>20)
		}
	}
}
