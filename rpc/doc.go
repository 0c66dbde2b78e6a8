// Package rpc lets programs expose uniquely named nodes that offer
// interfaces (methods and events) at paths, call those methods and
// subscribe to those events, in the manner of supcon, over slc's
// supervised connections. Everything reconnects by itself.
//
// # Nodes
//
// A Node runs on an slc.Communicator, one per communicator, and takes
// the name of the communicator. It takes the rpc layer's messages with
// Communicator.Handle, so the application's Receive keeps getting the
// others. Create it before the communicator listens or connects:
//
//	c, _ := slc.New(slc.WithName("timer"))
//	n, _ := rpc.New(c)
//	defer c.Close()
//	defer n.Close()
//	c.Listen(ctx, "127.0.0.1:7000")
//
// Nodes connect with Communicator.Connect (or Node.Connect, which reports
// a refused name clearly). Calls, subscriptions and descriptions address
// the peers of a node.
//
// # Interfaces
//
// An interface is declared as data: a dotted name, methods with in- and
// out-arguments, events with arguments, and a description on every item.
// Argument types are optional and checked on every call and event:
//
//	var timerIface = rpc.Interface{
//		Name:        "com.example.Timer",
//		Description: "Named timers that fire an event when they expire.",
//		Methods: []rpc.Method{{
//			Name: "add", Description: "Start a timer.",
//			In: []rpc.Argument{
//				{Name: "name", Type: rpc.TypeString, Description: "The timer's name."},
//				{Name: "seconds", Type: rpc.TypeFloat, Description: "Seconds until it fires."},
//			},
//		}},
//		Events: []rpc.Event{{
//			Name: "timeout", Description: "A timer expired.",
//			Args: []rpc.Argument{{Name: "name", Type: rpc.TypeString, Description: "The timer's name."}},
//		}},
//	}
//
// Interface.Validate (which NewImplementation, NewMethod and NewEvent
// call) rejects invalid or duplicate names, missing descriptions and
// unknown types. LoadInterface reads a declaration from JSON.
//
// # Implementations
//
// An Implementation handles an interface's methods and fires its events.
// Register it on a node at a path; Unregister removes it:
//
//	impl, _ := rpc.NewImplementation(timerIface)
//	impl.Handle("add", func(ctx context.Context, args rpc.Args) (rpc.Args, error) { ... })
//	n.Register("/timer", impl)
//	...
//	impl.Fire(ctx, "timeout", rpc.Args{"name": "tea"})
//
// Each call runs on a goroutine of its own, with a context that ends when
// the caller cancels, when the call's deadline (the caller's) passes, or
// when the node closes. A handler's error or panic fails that call only.
//
// # Typed methods and events
//
// MethodOf and EventOf put Go structs in place of Args, so that typical
// code never touches maps. NewMethod checks the structs against the
// declaration once:
//
//	type AddIn struct {
//		Name    string
//		Seconds float64
//	}
//	var add = rpc.MustMethod[AddIn, rpc.Empty](timerIface, "add")
//	var timeout = rpc.MustEvent[struct{ Name string }](timerIface, "timeout")
//
//	add.Implement(impl, func(ctx context.Context, in AddIn) (rpc.Empty, error) { ... })
//	_, err := add.Call(ctx, n, "timer", "/timer", AddIn{"tea", 180})
//	timeout.On(n, "timer", "/timer", func(from slc.PeerID, ev struct{ Name string }) { ... })
//
// # Calls
//
// Node.Call sends a call and waits for its result. Its errors are *Error
// values with a Kind: unknown node, path, interface or method, bad
// arguments, a failed handler, a timeout, a cancellation, a node that
// restarted or was lost meanwhile, a busy or closed node. Compare them
// with errors.Is and the sentinels (ErrUnknownMethod, ErrTimeout, ...).
//
// A call runs at most once per call ID, even when it arrives twice: slc
// delivers exactly once while both processes live, and the callee keeps
// the result of each call until the caller has it, to answer a copy that
// slc re-sends after a session was rebuilt, or that the caller sends again
// after the callee changed, without running it again. Each call carries
// the caller's watermark for the callee, the lowest ID of its calls there
// whose results it still awaits; the callee drops only the results below
// it. A caller with WithMaxResults calls kept on a callee gets KindBusy
// for new ones rather than a result being forgotten. A call sent to an
// earlier instance of a node that restarted fails with KindRestarted: it
// may have run there, and is never run again.
//
// # Subscriptions
//
// Node.On subscribes a handler to an event of a node. The subscription
// lives until Unsubscribe: across reconnects (events fired meanwhile are
// queued by slc and arrive when the session resumes), across the loss of
// the session, and across restarts of the remote process (the
// subscription is sent to the new instance when it says hello). Handlers
// run in order on one goroutine of the node.
//
// The node subscribed to checks that the path implements the interface and
// that it declares the event; Wait reports a refusal as an *Error of kind
// KindUnknownPath, KindUnknownInterface or KindUnknownEvent.
//
// Handlers that fall behind do not hold up the connection: past
// WithEventQueue events waiting, further events are dropped, counted by
// Subscription.Dropped and reported with EventsDropped.
//
// Across a restart, events are not durable: events the old instance had
// queued die with it, and events the new instance fires before the
// subscription reaches it are not delivered. Events queued for a
// subscriber that restarts reach its new instance if it subscribes to
// them again.
//
// # Introspection and events
//
// Nodes lists the known nodes: the peers, and their peers. Describe
// returns a node's paths and interfaces with their documentation, for a
// peer or for a peer of a peer (which that peer answers for). The node
// publishes NodeAppeared, NodeDisappeared, ImplementationRegistered,
// ImplementationUnregistered, NodeRefused and EventsDropped on the
// communicator's EventStream, beside slc's own events.
//
// # Unique names
//
// A node's name is unique among the nodes that know each other. Two nodes
// of the same name cannot both be peers of one node: slc refuses the
// second connection (Node.Connect returns a *DuplicateNameError). Each
// node also tells its peers who its own peers are; a node that sees two
// live instances of a name, one of them its peer, checks that the peer is
// alive and refuses the instance that started later: it sends it a
// refusal (directly, or through the peer that has it) and that peer
// disconnects it. The refused node publishes NodeRefused, its Err returns
// the *DuplicateNameError, and its calls fail with KindRefused.
//
// # Wire format
//
// The rpc layer's messages are ordinary slc messages of registered types
// named "slc.rpc.*" (docs/rpc.md lists them), encoded with the
// communicator's serializer (msgpack by default; json works too). A
// communicator with the raw serializer cannot carry them.
package rpc
