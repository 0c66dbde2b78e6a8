package discovery_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/slc-go/slc/discovery"
)

// One node advertises itself under a name, on the loopback interface only,
// and a one-shot browse on the same interface resolves the name to the
// node's ID and addresses.
func Example() {
	lo := []string{"lo"}
	r, err := discovery.Advertise(discovery.AdvertiseConfig{
		Name:       "example robot",
		Node:       "robot-1",
		Instance:   7,
		Listeners:  []discovery.Listener{{IP: net.IPv4(127, 0, 0, 1), Port: 7400}},
		Interfaces: lo,
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close(true) // says goodbye, so browsers drop it at once

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	found, err := discovery.Resolve(ctx, discovery.BrowseConfig{Interfaces: lo}, "example robot")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range found {
		fmt.Println(s.Name, s.PeerID, s.Addrs, s.Instance)
	}
	// Output: example robot robot-1 [127.0.0.1:7400] 7
}
