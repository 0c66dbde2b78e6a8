package discovery_test

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

// nodeBin is the helper the cross-process tests run (testdata/mdnsnode),
// built by TestMain.
var nodeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slc-discovery-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	nodeBin = filepath.Join(dir, "mdnsnode")
	args := []string{"build", "-o", nodeBin}
	if raceEnabled() {
		args = append(args, "-race") // the helper is checked for data races too
	}
	if out, err := exec.Command("go", append(args, "./testdata/mdnsnode")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, append(testutil.LeakOptions(), goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))...)
}

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
