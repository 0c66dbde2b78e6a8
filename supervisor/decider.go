package supervisor

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/asynkron/protoactor-go/actor"
)

// Class is the broad kind of a failure reason, as told by [Classify].
type Class int

const (
	// Other is everything that is neither Network nor Protocol,
	// including panics with non-error values and runtime errors.
	Other Class = iota
	// Network failures are transient transport errors: refused or reset
	// connections, timeouts, unexpected EOF. Reconnecting may help.
	Network
	// Protocol failures are permanent: the peer or the data is wrong and
	// retrying cannot help. An error is Protocol if the first error in its
	// chain that has a Permanent() bool method returns true.
	Protocol
)

// String returns the name of the class.
func (c Class) String() string {
	switch c {
	case Network:
		return "Network"
	case Protocol:
		return "Protocol"
	case Other:
		return "Other"
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// permanent is implemented by errors that know whether retrying can help.
type permanent interface {
	Permanent() bool
}

// networkErrors are matched with errors.Is.
var networkErrors = [...]error{
	io.EOF,
	io.ErrUnexpectedEOF,
	io.ErrClosedPipe,
	net.ErrClosed,
	os.ErrDeadlineExceeded,
	context.DeadlineExceeded,
	syscall.ECONNREFUSED,
	syscall.ECONNRESET,
	syscall.ECONNABORTED,
	syscall.EPIPE,
	syscall.ETIMEDOUT,
	syscall.EHOSTUNREACH,
	syscall.ENETUNREACH,
}

// Classify tells which [Class] a failure reason belongs to. Only errors
// are examined, through their whole errors.Unwrap chain (including
// errors.Join trees):
//
//   - Protocol: the first error in the chain with a Permanent() bool
//     method reports true. This wins over everything below, so a
//     permanent error wrapping an io.EOF is still Protocol.
//   - Network: the chain contains io.EOF, io.ErrUnexpectedEOF,
//     io.ErrClosedPipe, net.ErrClosed, os.ErrDeadlineExceeded,
//     context.DeadlineExceeded, one of the syscall errors ECONNREFUSED,
//     ECONNRESET, ECONNABORTED, EPIPE, ETIMEDOUT, EHOSTUNREACH and
//     ENETUNREACH, or a net.Error such as *net.OpError. A bare
//     syscall.Errno satisfies net.Error but counts only if listed.
//   - Other: anything else, including nil and non-error panic values.
//
// Classify is safe for concurrent use.
func Classify(reason any) Class {
	err, ok := reason.(error)
	if !ok || err == nil {
		return Other
	}
	var p permanent
	if errors.As(err, &p) && p.Permanent() {
		return Protocol
	}
	for _, target := range networkErrors {
		if errors.Is(err, target) {
			return Network
		}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if _, bare := ne.(syscall.Errno); !bare {
			return Network
		}
	}
	return Other
}

// DefaultDecider is the decider a [Backoff] uses when its Decider is nil:
// Network failures restart the child, Protocol failures stop it, and Other
// failures restart it too, since a bug in a connection's code should lead
// to a reconnect, bounded by the retry budget.
func DefaultDecider(reason any) actor.Directive {
	if Classify(reason) == Protocol {
		return actor.StopDirective
	}
	return actor.RestartDirective
}

// Decider returns a decider that looks up the [Class] of each reason in m;
// classes missing from m fall back to [DefaultDecider]. The map is copied,
// so later changes to m have no effect, and the decider is safe for
// concurrent use.
//
//	backoff.Decider = supervisor.Decider(map[supervisor.Class]actor.Directive{
//		supervisor.Other: actor.EscalateDirective,
//	})
func Decider(m map[Class]actor.Directive) actor.DeciderFunc {
	table := make(map[Class]actor.Directive, len(m))
	for c, d := range m {
		table[c] = d
	}
	return func(reason any) actor.Directive {
		if d, ok := table[Classify(reason)]; ok {
			return d
		}
		return DefaultDecider(reason)
	}
}
