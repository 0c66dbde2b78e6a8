package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slc-go/slc/mailbox"
	"github.com/slc-go/slc/peer"
)

// damagedStore builds a store holding outbound frames for peer b and
// inbound messages from s, closes it, and returns its directory.
func damagedStore(t *testing.T) string {
	dir := t.TempDir()
	st := open(t, dir, "a", Options{})
	st.SetAddr("b", "127.0.0.1:9")
	n := st.Append("b", []byte("HDR"), []byte("OUTBOUND-PATTERN-1"), 1, 0)
	if err := st.WaitCommit(n); err != nil {
		t.Fatal(err)
	}
	n = st.Append("b", []byte("HDR"), []byte("OUTBOUND-PATTERN-2"), 2, 0)
	if err := st.WaitCommit(n); err != nil {
		t.Fatal(err)
	}
	ib := mailbox.New(mailbox.Config{Taken: st.Taken})
	msgs := rawMsgs("s", 4, 1, 2)
	msgs[1].Raw = []byte("INBOUND-PATTERN")
	if _, err := st.Sink(ib).Push(nil, "s", msgs); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ib.Close()
	return dir
}

func flip(t *testing.T, path string, pattern string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(pattern))
	if i < 0 {
		t.Fatalf("%q not in %s", pattern, path)
	}
	b[i+3] ^= 0x40
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptRecordDetected(t *testing.T) {
	dir := damagedStore(t)
	flip(t, filepath.Join(dir, DBName), "OUTBOUND-PATTERN-2")
	flip(t, filepath.Join(dir, DBName), "INBOUND-PATTERN")

	_, err := Open(dir, "a", Options{})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Fatal {
		t.Fatalf("Open of a damaged store: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"out/b/r2", "in/s/r", "not re-sent", "not consumed", "Intact: node \"a\"", "salvage"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	// Open changed nothing: the same error again, and Inspect reports it.
	if _, err2 := Open(dir, "a", Options{}); err2 == nil || err2.Error() != msg {
		t.Fatalf("second Open: %v", err2)
	}
	r, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Damage) != 2 || len(r.Out) != 1 || r.Out[0].Messages != 1 {
		t.Fatalf("inspect: damage %v, out %+v", r.Damage, r.Out)
	}
	var out bytes.Buffer
	r.Print(&out)
	if !strings.Contains(out.String(), "2 damaged parts") {
		t.Fatalf("report:\n%s", out.String())
	}

	// Salvage keeps the rest and sets the damaged parts aside.
	st, err := Open(dir, "a", Options{Salvage: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Damage()) != 2 {
		t.Fatalf("salvage: %v", st.Damage())
	}
	rp := st.Restored()
	if len(rp) != 1 || len(rp[0].Frames) != 1 || rp[0].Frames[0].Seq != 1 {
		t.Fatalf("salvaged frames: %+v", rp)
	}
	if in := st.RestoredInbox(); len(in) != 0 {
		t.Fatalf("restored damaged inbound record: %+v", in)
	}
	st.Close()
	// Set aside for good: a plain Open succeeds now.
	st = open(t, dir, "a", Options{})
	defer st.Close()
	if len(st.Restored()) != 1 {
		t.Fatal("the intact record did not survive the salvage")
	}
}

func TestTruncatedOrEmptyDatabase(t *testing.T) {
	for _, frac := range []float64{0, 0.25, 0.5, 0.9} {
		dir := damagedStore(t)
		path := filepath.Join(dir, DBName)
		fi, _ := os.Stat(path)
		if err := os.Truncate(path, int64(float64(fi.Size())*frac)); err != nil {
			t.Fatal(err)
		}
		st, err := Open(dir, "a", Options{})
		if err == nil {
			// The cut spared every page in use (bbolt grows its file
			// ahead of need): everything must be there.
			r, in := st.Restored(), st.RestoredInbox()
			st.Close()
			if frac == 0 || len(r) != 1 || len(r[0].Frames) != 2 || len(in) != 1 || len(in[0].Msgs) != 2 {
				t.Fatalf("truncated to %.0f%%: opened with %+v %+v", frac*100, r, in)
			}
			continue
		}
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("truncated to %.0f%%: %v", frac*100, err)
		}
		if !strings.Contains(err.Error(), "Nothing can be recovered") && !strings.Contains(err.Error(), "Intact") {
			t.Fatalf("unclear error: %v", err)
		}
		if _, err := Inspect(dir); err == nil && frac == 0 {
			t.Fatal("Inspect of an empty database succeeded")
		}
	}
}

func TestDamagedConsumptionLog(t *testing.T) {
	dir := damagedStore(t)
	if err := os.Truncate(filepath.Join(dir, LogName), 100); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, "a", Options{})
	if err == nil || !strings.Contains(err.Error(), LogName) || !strings.Contains(err.Error(), "delivered again") {
		t.Fatalf("got %v", err)
	}
	st := open(t, dir, "a", Options{Salvage: true})
	defer st.Close()
	if n := len(st.RestoredInbox()); n != 1 {
		t.Fatalf("restored %d groups", n)
	}
}

// TestRandomDamageNeverPanics flips bytes all over the file: Open either
// works or fails with an error; it never panics or hangs.
func TestRandomDamageNeverPanics(t *testing.T) {
	src := damagedStore(t)
	orig, err := os.ReadFile(filepath.Join(src, DBName))
	if err != nil {
		t.Fatal(err)
	}
	clog, _ := os.ReadFile(filepath.Join(src, LogName))
	step := max(1, len(orig)/300)
	for off := 0; off < len(orig); off += step {
		dir := t.TempDir()
		b := bytes.Clone(orig)
		b[off] ^= 0xff
		os.WriteFile(filepath.Join(dir, DBName), b, 0o600)
		os.WriteFile(filepath.Join(dir, LogName), clog, 0o600)
		st, err := Open(dir, "a", Options{})
		if err == nil {
			st.Close()
		}
	}
}

var _ = peer.ID("")
