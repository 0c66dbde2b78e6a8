package bus_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"testing"

	"go.uber.org/goleak"

	"github.com/slc-go/slc/internal/testutil"
)

// busnodeBin is the helper binary of the failover test, built by TestMain
// from testdata/busnode.
var busnodeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slc-bus-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cleanup := func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}
	busnodeBin = filepath.Join(dir, "busnode")
	args := []string{"build", "-o", busnodeBin}
	if raceEnabled() {
		args = append(args, "-race") // the helper is checked for data races too
	}
	if out, err := exec.Command("go", append(args, "./testdata/busnode")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build busnode: %v\n%s", err, out)
		cleanup(1)
	}
	goleak.VerifyTestMain(m, append(testutil.LeakOptions(), goleak.Cleanup(cleanup))...)
}

// raceEnabled reports whether the tests were built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}
