//go:build !soak

package reliability_test

import (
	"testing"
	"time"
)

// buildTags is what the command that reproduces a row needs.
const buildTags = ""

// TestReliability is the quick form, run by CI: every scenario at a size
// that keeps the whole suite within a few minutes. The full form runs with
// go test -tags soak.
func TestReliability(t *testing.T) {
	runAll(t, sizes{
		resetMsgs:      10000,
		stallMsgs:      6000,
		killMsgs:       15000,
		bandwidthBytes: 8 << 20,
		churnFor:       10 * time.Second,
	})
}
