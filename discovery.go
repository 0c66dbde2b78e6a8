package slc

import (
	"context"
	"errors"
	"time"

	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/discovery"
)

// Service is a node found by Discover: the name it advertises, its node
// name (PeerID), the addresses to dial, its port, instance ID and, in
// secure mode, its key fingerprint.
type Service = discovery.Service

// DefaultDiscoverTimeout is how long Discover browses when its context
// has no deadline.
const DefaultDiscoverTimeout = actors.DefaultDiscoverTimeout

// ErrNotListening: Advertise was called before Listen on a TCP address.
var ErrNotListening = actors.ErrNotListening

// ErrAdvertiseRetrying is wrapped by the error of an Advertise whose
// registration failed: the advertiser keeps trying, with backoff, until
// StopAdvertising.
var ErrAdvertiseRetrying = actors.ErrRetrying

// advertiseWait bounds the wait for the facade's answer to Advertise and
// StopAdvertising: a registration attempt takes a quarter of a second.
const advertiseWait = time.Minute

// Advertise announces this node on the local network with mDNS (DNS-SD
// service type _slc._tcp) under name, or under the node's name when name
// is "". Other nodes find it with Discover and connect to it with
// Connect(ctx, "mdns:"+name). The node must listen on a TCP address
// first: the port of its TCP listener is advertised, with the addresses
// of each interface (WithInterfaces) that the listener accepts
// connections on. The TXT record carries the node's name, instance ID,
// protocol versions, the port and, in secure mode, its key fingerprint.
//
// Advertise returns once the name is announced, after making sure no
// other node answers for it (which fails with an error wrapping
// discovery.ErrNameInUse). If the registration fails, the advertiser is
// retried with backoff by its supervisor until StopAdvertising, and the
// error wraps ErrAdvertiseRetrying. Advertising several names is allowed; advertising a name
// again returns the state of its latest attempt.
func (c *Communicator) Advertise(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), advertiseWait)
	defer cancel()
	res, err := c.request(ctx, &actors.Advertise{Name: name})
	if err != nil {
		return err
	}
	return res.(*actors.AdvertiseResult).Err
}

// StopAdvertising stops advertising every name, saying goodbye so that
// browsers forget them at once (ServiceLost with reason "goodbye"). It
// returns once the goodbyes are sent.
func (c *Communicator) StopAdvertising() error {
	ctx, cancel := context.WithTimeout(context.Background(), advertiseWait)
	defer cancel()
	res, err := c.request(ctx, &actors.StopAdvertising{})
	if err != nil {
		return err
	}
	return res.(*actors.StoppedAdvertising).Err
}

// Discover browses the local network with mDNS until ctx ends (or for
// DefaultDiscoverTimeout when ctx has no deadline) and returns every node
// advertising name ("" for any name) that answered. It queries again
// every quarter of a second during the first two seconds, so one lost
// packet does not hide a node. Ending ctx is how Discover normally ends:
// it then returns what it found, without an error.
//
// While it runs, ServiceDiscovered and ServiceLost events are published
// on the EventStream.
func (c *Communicator) Discover(ctx context.Context, name string) ([]Service, error) {
	if c.core.Closed() {
		return nil, ErrClosed
	}
	timeout := DefaultDiscoverTimeout
	if d, ok := ctx.Deadline(); ok {
		if timeout = time.Until(d); timeout <= 0 {
			return nil, nil
		}
	}
	r := actors.NewReply(c.sys)
	defer r.Close()
	r.Request(c.pid, &actors.Discover{Name: name, Timeout: timeout})
	res, err := r.Wait(ctx)
	if err != nil && ctx.Err() != nil {
		// ctx ended: take what the browse found until now.
		c.sys.Root.Send(c.pid, &actors.CancelDiscover{ReplyTo: r.PID()})
		wctx, cancel := context.WithTimeout(context.Background(), time.Second)
		res, err = r.Wait(wctx)
		cancel()
		if err != nil && !errors.Is(err, ErrClosed) {
			return nil, nil // the browse ended with the communicator
		}
	}
	if err != nil {
		return nil, err
	}
	dr := res.(*actors.DiscoverResult)
	return dr.Services, dr.Err
}
