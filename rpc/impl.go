package rpc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/slc-go/slc"
)

// MethodFunc handles a call: it gets the in-arguments and returns the
// out-arguments. ctx ends when the caller cancels, when the call's
// deadline passes, or when the node closes; CallerOf(ctx) tells who
// called. An error reaches the caller as KindHandler, unless it is an
// *Error made with Errorf, whose kind is kept. A panic is recovered and
// reported as KindHandler; the node goes on.
type MethodFunc func(ctx context.Context, args Args) (Args, error)

// Implementation implements an interface: a handler per method, and Fire
// for its events. Register it on a node at one or more paths.
//
// Its methods are safe for concurrent use. Handlers run concurrently, one
// goroutine per call.
type Implementation struct {
	iface Interface

	mu       sync.RWMutex
	handlers map[string]MethodFunc
	regs     []registration
}

type registration struct {
	n    *Node
	path string
}

// NewImplementation returns an implementation of iface, which it
// validates. Give it a handler for every method with Handle (or
// MethodOf.Implement) before registering it.
func NewImplementation(iface Interface) (*Implementation, error) {
	if err := iface.Validate(); err != nil {
		return nil, err
	}
	return &Implementation{iface: iface.clone(), handlers: map[string]MethodFunc{}}, nil
}

// Interface returns the implemented interface.
func (im *Implementation) Interface() Interface { return im.iface.clone() }

// Handle sets the handler of a method. It fails if the interface declares
// no such method.
func (im *Implementation) Handle(method string, fn MethodFunc) error {
	if _, ok := im.iface.Method(method); !ok {
		return fmt.Errorf("rpc: interface %s declares no method %q", im.iface.Name, method)
	}
	if fn == nil {
		return errors.New("rpc: nil method handler")
	}
	im.mu.Lock()
	im.handlers[method] = fn
	im.mu.Unlock()
	return nil
}

func (im *Implementation) handler(method string) MethodFunc {
	im.mu.RLock()
	defer im.mu.RUnlock()
	return im.handlers[method]
}

// missing lists the methods without a handler.
func (im *Implementation) missing() []string {
	im.mu.RLock()
	defer im.mu.RUnlock()
	var out []string
	for _, m := range im.iface.Methods {
		if im.handlers[m.Name] == nil {
			out = append(out, m.Name)
		}
	}
	return out
}

func (im *Implementation) addReg(n *Node, path string) {
	im.mu.Lock()
	im.regs = append(im.regs, registration{n, path})
	im.mu.Unlock()
}

func (im *Implementation) removeReg(n *Node, path string) {
	im.mu.Lock()
	im.regs = slices.DeleteFunc(im.regs, func(r registration) bool { return r.n == n && r.path == path })
	im.mu.Unlock()
}

// Fire sends an event to every node subscribed to it, at every path where
// the implementation is registered. It checks args against the event's
// declaration. It returns once the event is queued for each subscriber:
// at once, unless a subscriber has a full send buffer (slc's BufferCap),
// in which case it waits for room or for ctx. A subscriber that is
// reconnecting gets the event when its session resumes. With no
// subscriber (or no registration) Fire does nothing.
func (im *Implementation) Fire(ctx context.Context, event string, args Args) error {
	decl, ok := im.iface.Event(event)
	if !ok {
		return fmt.Errorf("rpc: interface %s declares no event %q", im.iface.Name, event)
	}
	if args == nil {
		args = Args{}
	}
	if err := checkArgs(decl.Args, args); err != nil {
		return fmt.Errorf("rpc: event %s.%s: %w", im.iface.Name, event, err)
	}
	im.mu.RLock()
	regs := slices.Clone(im.regs)
	im.mu.RUnlock()
	var errs []error
	for _, r := range regs {
		if err := r.n.fire(ctx, r.path, im.iface.Name, event, args); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CallInfo describes the call a handler is running.
type CallInfo struct {
	Node      slc.PeerID // the caller
	Path      string
	Interface string
	Method    string
}

type callInfoKey struct{}

// CallerOf returns the call a handler's ctx belongs to.
func CallerOf(ctx context.Context) (CallInfo, bool) {
	ci, ok := ctx.Value(callInfoKey{}).(CallInfo)
	return ci, ok
}

// PathDescription is what a node offers at one path.
type PathDescription struct {
	Path       string      `msgpack:"path" json:"path"`
	Interfaces []Interface `msgpack:"ifaces" json:"interfaces"`
}

func (n *Node) describePathsLocked() []PathDescription {
	paths := make([]string, 0, len(n.impls))
	for p := range n.impls {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	out := make([]PathDescription, 0, len(paths))
	for _, p := range paths {
		pd := PathDescription{Path: p}
		for _, im := range n.impls[p] {
			pd.Interfaces = append(pd.Interfaces, im.iface.clone())
		}
		slices.SortFunc(pd.Interfaces, func(a, b Interface) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, pd)
	}
	return out
}

// Register offers impl at path on this node. Every method of its
// interface must have a handler. A path holds at most one implementation
// of each interface. Peers are told (ImplementationRegistered).
func (n *Node) Register(path string, impl *Implementation) error {
	if !ValidPath(path) {
		return fmt.Errorf("rpc: invalid path %q: want \"/\" or \"/a/b\"", path)
	}
	if impl == nil {
		return errors.New("rpc: nil implementation")
	}
	if m := impl.missing(); len(m) > 0 {
		return fmt.Errorf("rpc: implementation of %s has no handler for %s", impl.iface.Name, strings.Join(m, ", "))
	}
	name := impl.iface.Name
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return n.closedErr()
	}
	if n.impls[path][name] != nil {
		n.mu.Unlock()
		return fmt.Errorf("rpc: %s already has an implementation of %s", path, name)
	}
	if n.impls[path] == nil {
		n.impls[path] = map[string]*Implementation{}
	}
	n.impls[path][name] = impl
	n.mu.Unlock()
	impl.addReg(n, path)
	n.publish(&ImplementationRegistered{Node: n.name, Path: path, Interface: name})
	iface := impl.iface.clone()
	n.ctl.push(func() {
		n.broadcast(&registeredMsg{Instance: n.inst, Path: path, Interface: iface})
	})
	return nil
}

// Unregister removes the implementation of iface at path. Calls to it
// fail from then on with KindUnknownPath or KindUnknownInterface; calls
// in progress finish. Subscriptions stay: they get its events again if an
// implementation is registered there later.
func (n *Node) Unregister(path, iface string) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return n.closedErr()
	}
	impl := n.impls[path][iface]
	if impl == nil {
		n.mu.Unlock()
		return fmt.Errorf("rpc: no implementation of %s at %s", iface, path)
	}
	delete(n.impls[path], iface)
	if len(n.impls[path]) == 0 {
		delete(n.impls, path)
	}
	n.mu.Unlock()
	impl.removeReg(n, path)
	n.publish(&ImplementationUnregistered{Node: n.name, Path: path, Interface: iface})
	n.ctl.push(func() {
		n.broadcast(&unregisteredMsg{Instance: n.inst, Path: path, Interface: iface})
	})
	return nil
}
