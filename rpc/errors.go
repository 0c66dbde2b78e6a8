package rpc

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slc-go/slc"
)

// Kind classifies an *Error. Kinds travel on the wire as these strings.
type Kind string

// Error kinds.
const (
	// KindUnknownNode: no node of that name is connected (a Call fails
	// with it at once), or the node is not an rpc node.
	KindUnknownNode Kind = "unknown-node"
	// KindUnknownPath: the node has nothing registered at the path.
	KindUnknownPath Kind = "unknown-path"
	// KindUnknownInterface: nothing at the path implements the interface.
	KindUnknownInterface Kind = "unknown-interface"
	// KindUnknownMethod: the interface declares no such method.
	KindUnknownMethod Kind = "unknown-method"
	// KindUnknownEvent: the interface declares no such event (a
	// subscription's Wait reports it).
	KindUnknownEvent Kind = "unknown-event"
	// KindBadArguments: the arguments do not match the declaration
	// (missing, unknown, or of the wrong type), or the handler rejected
	// them by returning an *Error of this kind.
	KindBadArguments Kind = "bad-arguments"
	// KindHandler: the handler returned an error, panicked, or returned
	// results that do not match the declaration. The node goes on.
	KindHandler Kind = "handler"
	// KindTimeout: the call's deadline passed, on the caller's side or
	// in the handler.
	KindTimeout Kind = "timeout"
	// KindCanceled: the caller canceled the call.
	KindCanceled Kind = "canceled"
	// KindRestarted: the node restarted while the call was in progress;
	// the call may have run on its previous instance, and is not run
	// again.
	KindRestarted Kind = "restarted"
	// KindNodeLost: the session with the node ended (PeerLost, or a
	// goodbye) before the result arrived; the call may have run.
	KindNodeLost Kind = "node-lost"
	// KindBusy: the node has its maximum of calls in progress; the call
	// did not run.
	KindBusy Kind = "busy"
	// KindClosed: the local or the remote node is closed.
	KindClosed Kind = "closed"
	// KindRefused: the local or the remote node was refused because its
	// name is taken (see DuplicateNameError).
	KindRefused Kind = "refused"
)

var kindText = map[Kind]string{
	KindUnknownNode: "unknown node", KindUnknownPath: "unknown path", KindUnknownInterface: "unknown interface",
	KindUnknownMethod: "unknown method", KindUnknownEvent: "unknown event", KindBadArguments: "bad arguments", KindHandler: "handler failed",
	KindTimeout: "timeout", KindCanceled: "canceled", KindRestarted: "node restarted", KindNodeLost: "node lost",
	KindBusy: "node busy", KindClosed: "node closed", KindRefused: "node refused",
}

// String returns the kind as words ("unknown method").
func (k Kind) String() string {
	if s, ok := kindText[k]; ok {
		return s
	}
	return string(k)
}

// Error is the error of a remote call: what failed (Kind), where (Node,
// Path, Interface, Method, as far as they apply) and why (Message). Err is
// a local cause (a context error, an slc error); it is not sent.
//
// Compare with errors.Is against the sentinels (ErrUnknownMethod, ...),
// which match any *Error of their kind.
type Error struct {
	Kind      Kind
	Node      slc.PeerID
	Path      string
	Interface string
	Method    string
	Message   string
	Err       error
}

// Sentinels for errors.Is: each matches every *Error of its kind.
var (
	ErrUnknownNode      = &Error{Kind: KindUnknownNode}
	ErrUnknownPath      = &Error{Kind: KindUnknownPath}
	ErrUnknownInterface = &Error{Kind: KindUnknownInterface}
	ErrUnknownMethod    = &Error{Kind: KindUnknownMethod}
	ErrUnknownEvent     = &Error{Kind: KindUnknownEvent}
	ErrBadArguments     = &Error{Kind: KindBadArguments}
	ErrHandler          = &Error{Kind: KindHandler}
	ErrTimeout          = &Error{Kind: KindTimeout}
	ErrCanceled         = &Error{Kind: KindCanceled}
	ErrRestarted        = &Error{Kind: KindRestarted}
	ErrNodeLost         = &Error{Kind: KindNodeLost}
	ErrBusy             = &Error{Kind: KindBusy}
	ErrClosed           = &Error{Kind: KindClosed}
	ErrRefused          = &Error{Kind: KindRefused}
)

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("rpc: ")
	where := make([]string, 0, 3)
	if e.Node != "" {
		where = append(where, string(e.Node))
	}
	if e.Path != "" {
		where = append(where, e.Path)
	}
	switch {
	case e.Interface != "" && e.Method != "":
		where = append(where, e.Interface+"."+e.Method)
	case e.Interface != "":
		where = append(where, e.Interface)
	}
	if len(where) > 0 {
		b.WriteString(strings.Join(where, " "))
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.String())
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil && (e.Message == "" || !strings.Contains(e.Message, e.Err.Error())) {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the local cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is makes a sentinel (an *Error with only a Kind) match every *Error of
// that kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Message == "" && t.Node == "" && t.Path == "" &&
		t.Interface == "" && t.Method == "" && t.Err == nil
}

// Timeout reports whether the call timed out, as net.Error does.
func (e *Error) Timeout() bool { return e.Kind == KindTimeout }

// Errorf returns an *Error of kind k. A handler returns one to choose the
// kind its caller sees (KindBadArguments for arguments it rejects, say);
// any other error reaches the caller as KindHandler.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// ErrDuplicateName matches a *DuplicateNameError.
var ErrDuplicateName = errors.New("rpc: duplicate node name")

// DuplicateNameError reports that a node was refused because another live
// node has its name. Node names are unique across the nodes that know
// each other (see the package documentation): when two live instances of
// a name meet, the one started first keeps it (ties go to the smaller
// instance ID) and the other is refused.
type DuplicateNameError struct {
	// Name is the contested name.
	Name slc.PeerID
	// Instance and Started identify the refused node.
	Instance uint64
	Started  time.Time
	// HolderInstance and HolderStarted identify the node that keeps the
	// name; zero when not known (a refused handshake).
	HolderInstance uint64
	HolderStarted  time.Time
	// By is the node that refused it; "" when a peer refused the
	// connection in its handshake (Err tells).
	By slc.PeerID
	// Err is the underlying error, for a handshake refused by slc.
	Err error
}

func (e *DuplicateNameError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rpc: node name %q is taken by another live node", e.Name)
	if e.HolderInstance != 0 {
		fmt.Fprintf(&b, " (instance %016x, started %s)", e.HolderInstance, e.HolderStarted.UTC().Format(time.RFC3339Nano))
	}
	if e.Instance != 0 {
		fmt.Fprintf(&b, "; this node (instance %016x, started %s) was refused", e.Instance, e.Started.UTC().Format(time.RFC3339Nano))
	} else {
		b.WriteString("; this node was refused")
	}
	if e.By != "" {
		fmt.Fprintf(&b, " by %q", e.By)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	b.WriteString(": choose another name")
	return b.String()
}

// Is makes errors.Is(err, ErrDuplicateName) true.
func (e *DuplicateNameError) Is(target error) bool { return target == ErrDuplicateName }

// Unwrap returns the underlying error.
func (e *DuplicateNameError) Unwrap() error { return e.Err }
