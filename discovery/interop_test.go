package discovery

import (
	"context"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grandcat/zeroconf"

	"github.com/slc-go/slc/internal/testutil"
)

// zeroconfGone waits until zeroconf's goroutines have ended. Its client
// and server do not wait for them (the server's announcement goroutine
// runs for about 3.5 s after Register, even past Shutdown), which is one
// of the reasons slc has its own responder and browser; the test must
// still not leave them behind.
func zeroconfGone(t *testing.T) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() bool {
		buf := make([]byte, 1<<20)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "grandcat/zeroconf")
	}, "zeroconf goroutines still running")
}

func loInterface(t *testing.T) net.Interface {
	ifaces, err := Interfaces(loOnly)
	if err != nil {
		t.Fatal(err)
	}
	return ifaces[0]
}

// TestZeroconfFindsOurResponder: another mDNS implementation's browser
// sees slc's service, with its port and TXT record.
func TestZeroconfFindsOurResponder(t *testing.T) {
	advertiseLo(t, "interop-responder", 0xe1, 7020, nil)
	res, err := zeroconf.NewResolver(zeroconf.SelectIfaces([]net.Interface{loInterface(t)}), zeroconf.SelectIPTraffic(zeroconf.IPv4))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	entries := make(chan *zeroconf.ServiceEntry)
	if err := res.Browse(ctx, ServiceType, "local.", entries); err != nil {
		t.Fatal(err)
	}
	var found *zeroconf.ServiceEntry
	for e := range entries {
		if e.Instance == "interop-responder" && found == nil {
			found = e
			cancel()
		}
	}
	zeroconfGone(t)
	if found == nil {
		t.Fatal("zeroconf did not find the service")
	}
	if found.Port != 7020 || !slices.Contains(found.Text, "node=node-interop-responder") ||
		len(found.AddrIPv4) == 0 || !found.AddrIPv4[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("zeroconf saw %+v", found)
	}
}

// TestWeFindZeroconfResponder: slc's browser finds an slc service that
// another mDNS implementation's responder advertises.
func TestWeFindZeroconfResponder(t *testing.T) {
	srv, err := zeroconf.RegisterProxy("interop zeroconf", ServiceType, "local.", 7021, "zc-host",
		[]string{"127.0.0.1"}, []string{"txtvers=1", "node=zc-node", "inst=00000000000000e2", "proto=1", "ports=7021"},
		[]net.Interface{loInterface(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer zeroconfGone(t)
	defer srv.Shutdown()
	svcs, err := Resolve(ctxFor(t, 3*time.Second), BrowseConfig{Interfaces: loOnly}, "interop zeroconf")
	if err != nil {
		t.Fatal(err)
	}
	if s := svcs[0]; s.PeerID != "zc-node" || s.Port != 7021 || s.Instance != 0xe2 || !slices.Equal(s.Addrs, []string{"127.0.0.1:7021"}) {
		t.Fatalf("found %+v", s)
	}
}
