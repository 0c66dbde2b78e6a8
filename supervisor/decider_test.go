package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

// timeoutErr is a custom net.Error.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	var nilErr error
	var nilPtr *int
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	perm := permanentErr{permanent: true}

	tests := []struct {
		name   string
		reason any
		want   Class
	}{
		{"nil", nil, Other},
		{"nil error interface", nilErr, Other},
		{"string panic", "boom", Other},
		{"int panic", 42, Other},
		{"nil pointer panic value", nilPtr, Other},
		{"runtime error", runtimeError(), Other},
		{"plain error", errors.New("boom"), Other},
		{"context canceled", context.Canceled, Other},
		{"bare unlisted errno", syscall.ENOENT, Other},
		{"wrapped unlisted errno", &os.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}, Other},

		{"io.EOF", io.EOF, Network},
		{"wrapped io.EOF", fmt.Errorf("read header: %w", io.EOF), Network},
		{"io.ErrUnexpectedEOF", io.ErrUnexpectedEOF, Network},
		{"io.ErrClosedPipe", io.ErrClosedPipe, Network},
		{"net.ErrClosed", fmt.Errorf("write: %w", net.ErrClosed), Network},
		{"os.ErrDeadlineExceeded", os.ErrDeadlineExceeded, Network},
		{"context.DeadlineExceeded", fmt.Errorf("dial: %w", context.DeadlineExceeded), Network},
		{"ECONNREFUSED", syscall.ECONNREFUSED, Network},
		{"ECONNRESET wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", syscall.ECONNRESET)), Network},
		{"ECONNABORTED", syscall.ECONNABORTED, Network},
		{"EPIPE in SyscallError", os.NewSyscallError("write", syscall.EPIPE), Network},
		{"ETIMEDOUT", syscall.ETIMEDOUT, Network},
		{"EHOSTUNREACH", syscall.EHOSTUNREACH, Network},
		{"ENETUNREACH", syscall.ENETUNREACH, Network},
		{"*net.OpError", opErr, Network},
		{"wrapped *net.OpError", fmt.Errorf("peer 10.0.0.7: %w", opErr), Network},
		{"net.OpError with unlisted errno", &net.OpError{Op: "read", Net: "tcp", Err: syscall.EINVAL}, Network},
		{"*net.DNSError", &net.DNSError{Err: "no such host", Name: "peer.invalid"}, Network},
		{"custom net.Error", fmt.Errorf("x: %w", timeoutErr{}), Network},
		{"joined with network", errors.Join(errors.New("a"), io.EOF), Network},

		{"permanent", perm, Protocol},
		{"wrapped permanent", fmt.Errorf("handshake: %w", perm), Protocol},
		{"permanent wrapping EOF", fmt.Errorf("%w: %w", perm, io.EOF), Protocol},
		{"joined with permanent", errors.Join(io.EOF, perm), Protocol},
		{"not permanent", permanentErr{permanent: false}, Other},
		{"not permanent wrapping EOF", fmt.Errorf("%w: %w", permanentErr{}, io.EOF), Network},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.reason); got != tt.want {
				t.Errorf("Classify(%#v) = %v, want %v", tt.reason, got, tt.want)
			}
		})
	}
}

func runtimeError() (reason any) {
	defer func() { reason = recover() }()
	var m map[string]int
	m["x"] = 1 // assignment to entry in nil map
	return nil
}

func TestClassString(t *testing.T) {
	for c, want := range map[Class]string{Other: "Other", Network: "Network", Protocol: "Protocol", Class(7): "Class(7)", Class(-1): "Class(-1)"} {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), got, want)
		}
	}
}

func TestDefaultDecider(t *testing.T) {
	tests := []struct {
		reason any
		want   actor.Directive
	}{
		{io.EOF, actor.RestartDirective},
		{permanentErr{permanent: true}, actor.StopDirective},
		{"nil map write", actor.RestartDirective},
		{errors.New("bug"), actor.RestartDirective},
	}
	for _, tt := range tests {
		if got := DefaultDecider(tt.reason); got != tt.want {
			t.Errorf("DefaultDecider(%v) = %v, want %v", tt.reason, got, tt.want)
		}
	}
}

func TestDeciderTable(t *testing.T) {
	m := map[Class]actor.Directive{
		Other:   actor.EscalateDirective,
		Network: actor.ResumeDirective,
	}
	decide := Decider(m)
	m[Network] = actor.StopDirective // the table was copied

	tests := []struct {
		reason any
		want   actor.Directive
	}{
		{io.EOF, actor.ResumeDirective},
		{"bug", actor.EscalateDirective},
		{permanentErr{permanent: true}, actor.StopDirective}, // missing: DefaultDecider
	}
	for _, tt := range tests {
		if got := decide(tt.reason); got != tt.want {
			t.Errorf("decide(%v) = %v, want %v", tt.reason, got, tt.want)
		}
	}

	if got := Decider(nil)(io.EOF); got != actor.RestartDirective {
		t.Errorf("Decider(nil)(io.EOF) = %v, want Restart", got)
	}
}
