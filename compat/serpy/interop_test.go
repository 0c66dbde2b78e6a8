package serpy

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// pythonPeer starts testdata/serpy_peer.py, a serpy peer written against
// Python's own base64, float.hex/fromhex and int.to_bytes, and returns the
// address it listens on and a reader of the JSON lines it prints for every
// value it receives. The test is skipped only when python3 is not
// installed.
func pythonPeer(t *testing.T, args ...string) (string, *bufio.Scanner, func()) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, py, append([]string{"testdata/serpy_peer.py"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 8<<20)
	if !lines.Scan() {
		cancel()
		cmd.Wait()
		t.Fatalf("python peer printed no port: %s", stderr.String())
	}
	addr := "127.0.0.1:" + strings.TrimSpace(lines.Text())
	return addr, lines, func() {
		if err := cmd.Wait(); err != nil {
			t.Errorf("python peer: %v\n%s", err, stderr.String())
		}
		cancel()
	}
}

func nextJSON(t *testing.T, lines *bufio.Scanner) map[string]any {
	t.Helper()
	if !lines.Scan() {
		t.Fatalf("python peer printed nothing more: %v", lines.Err())
	}
	var m map[string]any
	if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
		t.Fatalf("python peer printed %q: %v", lines.Text(), err)
	}
	return m
}

// Values Go sends to Python, what Python decodes them to, and what comes
// back.
func TestPythonSerpy2Echo(t *testing.T) {
	addr, lines, wait := pythonPeer(t, "v2-echo")
	ctx := testCtx(t, 30*time.Second)
	c, err := Dial(ctx, addr, WithProtocol(V2))
	if err != nil {
		t.Fatal(err)
	}
	floats := []float64{1.5, -0.1, 0.1 + 0.2, math.Copysign(0, -1), 5e-324, math.MaxFloat64, math.Inf(-1), 1e16, 123456.789}
	for _, f := range floats {
		if err := c.Send(ctx, f); err != nil {
			t.Fatal(err)
		}
		m := nextJSON(t, lines)
		if m["float"] != FloatHex(f) {
			t.Errorf("Python decoded %v as %v; want hex %s", f, m["float"], FloatHex(f))
		}
		if m["repr"] != FloatRepr(f) {
			t.Errorf("Python's repr(%v) = %v; FloatRepr says %s", f, m["repr"], FloatRepr(f))
		}
		v, err := c.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if math.Float64bits(v.(float64)) != math.Float64bits(f) {
			t.Errorf("echo of %v = %v", f, v)
		}
	}
	for _, i := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 1 << 40} {
		if err := c.Send(ctx, i); err != nil {
			t.Fatal(err)
		}
		if m := nextJSON(t, lines); m["int"] != float64(i) && !(math.Abs(float64(i)) > 1<<53) {
			t.Errorf("Python decoded %d as %v", i, m["int"])
		}
		if v, err := c.Receive(ctx); err != nil || v != i {
			t.Errorf("echo of %d = %v, %v", i, v, err)
		}
	}
	for _, s := range []string{"", "ascii", "héllo wörld ✓", "\x00\x1f\x04"} {
		if err := c.Send(ctx, s); err != nil {
			t.Fatal(err)
		}
		if m := nextJSON(t, lines); m["str"] != s {
			t.Errorf("Python decoded %q as %q", s, m["str"])
		}
		if v, err := c.Receive(ctx); err != nil || v != s {
			t.Errorf("echo of %q = %q, %v", s, v, err)
		}
	}
	blob := make([]byte, 300000)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	if err := c.Send(ctx, blob); err != nil {
		t.Fatal(err)
	}
	if m := nextJSON(t, lines); m["bytes"] != hex.EncodeToString(blob) {
		t.Error("Python decoded the blob differently")
	}
	if v, err := c.Receive(ctx); err != nil || string(v.([]byte)) != string(blob) {
		t.Errorf("blob echo differs: %v", err)
	}
	c.Close()
	wait()
}

// Values Python sends first: Python's float.hex and int.to_bytes output
// decoded by Go.
func TestPythonSerpy2Sends(t *testing.T) {
	values := `[{"int": -123456789}, {"float": "0x1.921fb54442d18p+1"}, {"float": "-0x0.0p+0"}, {"float": "inf"},
		{"str": "Grüße"}, {"bytes": "00ff1f04"}]`
	addr, lines, wait := pythonPeer(t, "v2-send", values)
	ctx := testCtx(t, 30*time.Second)
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{int64(-123456789), math.Pi, math.Copysign(0, -1), math.Inf(1), "Grüße", []byte{0, 0xff, 0x1f, 0x04}}
	for i, w := range want {
		v, err := c.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch w := w.(type) {
		case float64:
			if math.Float64bits(v.(float64)) != math.Float64bits(w) {
				t.Errorf("%d. received %v; want %v", i, v, w)
			}
		case []byte:
			if string(v.([]byte)) != string(w) {
				t.Errorf("%d. received %v; want %v", i, v, w)
			}
		default:
			if v != w {
				t.Errorf("%d. received %#v; want %#v", i, v, w)
			}
		}
	}
	c.Close()
	_ = lines
	wait()
}

// serpy v1 in every mode: Python decodes Go's blocks with its own
// b85decode, acknowledges modes 1 and 3, and echoes each message in the
// mode it came in, announcing the mode and waiting for Go's
// acknowledgements.
func TestPythonSerpyV1Echo(t *testing.T) {
	addr, lines, wait := pythonPeer(t, "v1-echo")
	ctx := testCtx(t, 30*time.Second)
	c, err := Dial(ctx, addr, WithProtocol(V1))
	if err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 100000)
	for i := range blob {
		blob[i] = byte(i * 13)
	}
	// Text goes in the mode asked for; a []byte goes in base85 (mode 2,
	// or 3 when acknowledged), as serpy's sendData does.
	for i, tc := range []struct {
		v        any
		mode     Mode
		wantMode Mode
		want     []byte
	}{
		{"plain", ModePlain, ModePlain, []byte("plain")},
		{"acknowledged", ModeAck, ModeAck, []byte("acknowledged")},
		{[]byte{0x00, 0x1f, 0x04, 0x01, 0xff}, ModePlain, ModeB85, []byte{0x00, 0x1f, 0x04, 0x01, 0xff}},
		{blob, ModeAck, ModeB85Ack, blob},
		{3.25, ModePlain, ModePlain, []byte("3.25")},
		{"plain again", ModePlain, ModePlain, []byte("plain again")},
		{[]byte{}, ModeB85Ack, ModeB85Ack, []byte{}},
		{-7, ModeAck, ModeAck, []byte("-7")},
	} {
		if err := c.SendMode(ctx, tc.v, tc.mode); err != nil {
			t.Fatal(err)
		}
		m := nextJSON(t, lines)
		if m["mode"] != float64(tc.wantMode) || m["bytes"] != hex.EncodeToString(tc.want) {
			t.Errorf("%d. Python received mode %v bytes %.40v; want mode %d", i, m["mode"], m["bytes"], tc.wantMode)
		}
		v, err := c.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(v.([]byte)) != string(tc.want) {
			t.Errorf("%d. echo = %.40q; want %.40q", i, v, tc.want)
		}
	}
	c.Close()
	wait()
}
