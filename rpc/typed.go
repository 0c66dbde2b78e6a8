package rpc

import (
	"context"
	"fmt"
	"reflect"

	"github.com/slc-go/slc"
)

// Empty is the argument struct of a method or event without arguments.
type Empty struct{}

// MethodOf is a method of an interface with typed arguments: In holds the
// in-arguments and Out the out-arguments, one exported field per
// argument. A field's argument name is its `rpc:"name"` tag, or else its
// name with the leading capitals in lower case (Seconds is "seconds", ID
// is "id", HTTPPort is "httpPort"); `rpc:"-"` leaves a field out. Nested
// structs, slices and maps convert the same way. Make one with NewMethod,
// which checks the fields against the declaration.
type MethodOf[In, Out any] struct {
	iface Interface
	decl  Method
}

// NewMethod returns the typed form of method name of iface. It fails when
// iface is invalid, has no such method, or In and Out do not match the
// declared arguments (names, and Go types that fit the declared types).
func NewMethod[In, Out any](iface Interface, name string) (MethodOf[In, Out], error) {
	if err := iface.Validate(); err != nil {
		return MethodOf[In, Out]{}, err
	}
	decl, ok := iface.Method(name)
	if !ok {
		return MethodOf[In, Out]{}, fmt.Errorf("rpc: interface %s declares no method %q", iface.Name, name)
	}
	what := fmt.Sprintf("method %s.%s", iface.Name, name)
	if err := checkStruct(reflect.TypeFor[In](), decl.In, what+" in-arguments"); err != nil {
		return MethodOf[In, Out]{}, err
	}
	if err := checkStruct(reflect.TypeFor[Out](), decl.Out, what+" out-arguments"); err != nil {
		return MethodOf[In, Out]{}, err
	}
	return MethodOf[In, Out]{iface: iface.clone(), decl: decl}, nil
}

// MustMethod is NewMethod for package-level declarations: it panics on
// error.
func MustMethod[In, Out any](iface Interface, name string) MethodOf[In, Out] {
	m, err := NewMethod[In, Out](iface, name)
	if err != nil {
		panic(err)
	}
	return m
}

// Name returns the method's name.
func (m MethodOf[In, Out]) Name() string { return m.decl.Name }

// Call calls the method at path on node (see Node.Call).
func (m MethodOf[In, Out]) Call(ctx context.Context, n *Node, node slc.PeerID, path string, in In) (Out, error) {
	var out Out
	res, err := n.Call(ctx, node, path, m.iface.Name, m.decl.Name, toArgs(in))
	if err != nil {
		return out, err
	}
	if err := fromArgs(res, &out); err != nil {
		return out, &Error{Kind: KindBadArguments, Node: node, Path: path, Interface: m.iface.Name, Method: m.decl.Name,
			Message: "results do not fit " + reflect.TypeFor[Out]().String() + ": " + err.Error()}
	}
	return out, nil
}

// Implement sets fn as the handler of the method in impl, which must
// implement the same interface.
func (m MethodOf[In, Out]) Implement(impl *Implementation, fn func(ctx context.Context, in In) (Out, error)) error {
	if impl.iface.Name != m.iface.Name {
		return fmt.Errorf("rpc: %s.%s cannot be implemented by an implementation of %s", m.iface.Name, m.decl.Name, impl.iface.Name)
	}
	if fn == nil {
		return fmt.Errorf("rpc: nil handler for %s.%s", m.iface.Name, m.decl.Name)
	}
	return impl.Handle(m.decl.Name, func(ctx context.Context, args Args) (Args, error) {
		var in In
		if err := fromArgs(args, &in); err != nil {
			return nil, Errorf(KindBadArguments, "%v", err)
		}
		out, err := fn(ctx, in)
		if err != nil {
			return nil, err
		}
		return toArgs(out), nil
	})
}

// EventOf is an event of an interface with typed arguments, T holding one
// field per argument (named as for MethodOf). Make one with NewEvent.
type EventOf[T any] struct {
	iface Interface
	decl  Event
}

// NewEvent returns the typed form of event name of iface, checking T
// against the declared arguments.
func NewEvent[T any](iface Interface, name string) (EventOf[T], error) {
	if err := iface.Validate(); err != nil {
		return EventOf[T]{}, err
	}
	decl, ok := iface.Event(name)
	if !ok {
		return EventOf[T]{}, fmt.Errorf("rpc: interface %s declares no event %q", iface.Name, name)
	}
	if err := checkStruct(reflect.TypeFor[T](), decl.Args, fmt.Sprintf("event %s.%s arguments", iface.Name, name)); err != nil {
		return EventOf[T]{}, err
	}
	return EventOf[T]{iface: iface.clone(), decl: decl}, nil
}

// MustEvent is NewEvent for package-level declarations: it panics on
// error.
func MustEvent[T any](iface Interface, name string) EventOf[T] {
	e, err := NewEvent[T](iface, name)
	if err != nil {
		panic(err)
	}
	return e
}

// Name returns the event's name.
func (e EventOf[T]) Name() string { return e.decl.Name }

// Fire fires the event from impl (see Implementation.Fire).
func (e EventOf[T]) Fire(ctx context.Context, impl *Implementation, v T) error {
	if impl.iface.Name != e.iface.Name {
		return fmt.Errorf("rpc: %s.%s cannot be fired by an implementation of %s", e.iface.Name, e.decl.Name, impl.iface.Name)
	}
	return impl.Fire(ctx, e.decl.Name, toArgs(v))
}

// On subscribes fn to the event at path on node (see Node.On). An event
// whose arguments do not fit T is logged and skipped.
func (e EventOf[T]) On(n *Node, node slc.PeerID, path string, fn func(from slc.PeerID, v T)) (*Subscription, error) {
	if fn == nil {
		return nil, fmt.Errorf("rpc: nil handler for %s.%s", e.iface.Name, e.decl.Name)
	}
	return n.On(node, path, e.iface.Name, e.decl.Name, func(ev EventMessage) {
		var v T
		if err := fromArgs(ev.Args, &v); err != nil {
			n.log.Warn("rpc: event arguments do not fit", "event", e.decl.Name, "from", string(ev.Node),
				"type", reflect.TypeFor[T]().String(), "err", err)
			return
		}
		fn(ev.Node, v)
	})
}
