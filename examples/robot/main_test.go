package main

import (
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/slc-go/slc/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testutil.LeakOptions()...) }

// TestRobot runs the example and checks its summary.
func TestRobot(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() {
		var b []byte
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			b = append(b, buf[:n]...)
			if err != nil {
				done <- b
				return
			}
		}
	}()
	err = run("127.0.0.1:0", 4)
	os.Stdout = stdout
	w.Close()
	out := string(<-done)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, want := range []string{
		"robot: the controller handled 8 readings; the logger logged 14 events",
		"participant logger     rank 1 server true  listeners [/]",
		"/robot/actuators/arm/",
		"arm retract",
		"/robot/sensors/imu/",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "logger     /robot/"); n != 14 {
		t.Errorf("the logger printed %d events, want 14:\n%s", n, out)
	}
}
