package main

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"
)

// A System is one messaging system under test, with one payload mode. Each
// workload asks it for connected endpoints over loopback TCP and drives
// them; a nil function means the system does not take part in that
// workload.
type System struct {
	Name string
	// Typed is true when the system carries Samples encoded with msgpack
	// (slc: registered typed messages), false for raw bytes.
	Typed bool
	// About says in a few words what is measured.
	About string
	// OneWay connects one sender to rxs receivers. Every receiver checks
	// each message with a Decoder of the cell's payload and reports it to
	// got, in the order it arrived.
	OneWay func(c Cell, rxs int, got Deliver) (Sender, error)
	// Echo connects a client to an echo server.
	Echo func(c Cell) (Requester, error)
	// Idle is the idle-peers workload: a listener in this process, and
	// many peers dialing it from a child process.
	Idle *Idle
}

// Cell is what a system needs to set up one measurement.
type Cell struct {
	P *Payload
	// Timeout bounds setup and each blocking step.
	Timeout time.Duration
}

// Deliver reports a received message (seq) or a receiver's error. It is
// safe to call from several receivers at once; calls for one receiver
// must be sequential, in arrival order.
type Deliver func(rx int, seq uint64, err error)

// Sender sends one cell's messages to every receiver.
type Sender interface {
	// Send sends message seq, blocking as the system does.
	Send(seq uint64) error
	// Finish returns once the system considers every message sent so far
	// delivered: flushed to the network, or acknowledged where the system
	// acknowledges.
	Finish(ctx context.Context) error
	// Close releases everything the cell set up. It unblocks a Send or
	// Finish in progress.
	Close() error
}

// Requester is the client side of the echo workload.
type Requester interface {
	// Request sends message seq and waits for the echo, which it checks.
	Request(seq uint64) error
	Close() error
}

// Idle is a system's part in the idle-peers workload.
type Idle struct {
	// Listen starts the listener all peers dial, in this process.
	Listen func(n int, timeout time.Duration) (IdleServer, error)
	// Peers prepares n peers of addr in the child process: everything but
	// the connections. connect then connects them all, parallel at a time,
	// and returns once every one is connected; close ends them.
	Peers func(addr string, n, parallel int, timeout time.Duration) (connect func() error, close func(), err error)
}

// IdleServer is the listening side of the idle-peers workload.
type IdleServer interface {
	Addr() string
	// Connected is the number of peers connected, or -1 when the system
	// does not tell.
	Connected() int
	Close() error
}

// systems lists every system, in table order. The files sys_*.go add
// theirs from init functions with register.
var systems []*System

// order fixes the table order; systems not listed go last.
var order = []string{
	"tcp", "tcp-chan", "tcp-aesgcm",
	"nats", "nats-raw", "protoactor", "protoactor-raw",
	"mangos", "mangos-raw", "zmq4", "zmq4-raw",
	"slc", "slc-raw", "slc-secure", "slc-secure-raw", "slc-durable", "slc-durable-queued",
}

func register(s *System) {
	systems = append(systems, s)
	rank := func(name string) int {
		for i, n := range order {
			if n == name {
				return i
			}
		}
		return len(order)
	}
	for i := len(systems) - 1; i > 0 && rank(systems[i].Name) < rank(systems[i-1].Name); i-- {
		systems[i], systems[i-1] = systems[i-1], systems[i]
	}
}

// selectSystems returns the systems matching the comma-separated patterns
// (path.Match syntax: "slc*,tcp"); all of them when only is empty.
func selectSystems(only string) ([]*System, error) {
	if strings.TrimSpace(only) == "" {
		return systems, nil
	}
	var pats []string
	for _, p := range strings.Split(only, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("-only: bad pattern %q", p)
			}
			pats = append(pats, p)
		}
	}
	var out []*System
	for _, s := range systems {
		for _, p := range pats {
			if ok, _ := path.Match(p, s.Name); ok {
				out = append(out, s)
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-only %q matches no system (systems: %s)", only, systemNames())
	}
	return out, nil
}

func systemNames() string {
	names := make([]string, len(systems))
	for i, s := range systems {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

func findSystem(name string) *System {
	for _, s := range systems {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func payloadName(typed bool) string {
	if typed {
		return "msgpack"
	}
	return "raw"
}

// idleIf returns i for the typed variant of a system: idle peers carry no
// messages, so the raw variant would measure the same thing again.
func idleIf(typed bool, i *Idle) *Idle {
	if !typed {
		return nil
	}
	return i
}
