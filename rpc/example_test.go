package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/rpc"
)

// The greeter's interface, declared as data.
var greeter = rpc.Interface{
	Name:        "example.Greeter",
	Description: "Greets visitors.",
	Methods: []rpc.Method{{
		Name:        "greet",
		Description: "Returns a greeting for a visitor, and announces the visit.",
		In:          []rpc.Argument{{Name: "name", Type: rpc.TypeString, Description: "The visitor's name."}},
		Out:         []rpc.Argument{{Name: "greeting", Type: rpc.TypeString, Description: "What to say."}},
	}},
	Events: []rpc.Event{{
		Name:        "greeted",
		Description: "Someone was greeted.",
		Args:        []rpc.Argument{{Name: "name", Type: rpc.TypeString, Description: "The visitor's name."}},
	}},
}

// Typed forms of the method and the event.
type (
	GreetIn  struct{ Name string }
	GreetOut struct{ Greeting string }
	Greeted  struct{ Name string }
)

var (
	greet   = rpc.MustMethod[GreetIn, GreetOut](greeter, "greet")
	greeted = rpc.MustEvent[Greeted](greeter, "greeted")
)

// A node offers the greeter at /hello; another calls it and subscribes to
// its event.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The server.
	sc, _ := slc.New(slc.WithName("greeter"))
	defer sc.Close()
	server, _ := rpc.New(sc)
	defer server.Close()
	impl, _ := rpc.NewImplementation(greeter)
	greet.Implement(impl, func(ctx context.Context, in GreetIn) (GreetOut, error) {
		if err := greeted.Fire(ctx, impl, Greeted{Name: in.Name}); err != nil {
			return GreetOut{}, err
		}
		return GreetOut{Greeting: "Hello, " + in.Name + "!"}, nil
	})
	server.Register("/hello", impl)
	addr, _ := sc.Listen(ctx, "127.0.0.1:0")

	// The client.
	cc, _ := slc.New(slc.WithName("visitor"))
	defer cc.Close()
	client, _ := rpc.New(cc)
	defer client.Close()
	peer, err := client.Connect(ctx, addr.String())
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan struct{})
	greeted.On(client, peer, "/hello", func(from slc.PeerID, ev Greeted) {
		fmt.Printf("event from %s: %s was greeted\n", from, ev.Name)
		close(done)
	})
	out, err := greet.Call(ctx, client, peer, "/hello", GreetIn{Name: "Ada"})
	if err != nil {
		fmt.Println(err)
		return
	}
	<-done
	fmt.Println(out.Greeting)

	// The same call with Args, and a misspelt argument.
	_, err = client.Call(ctx, peer, "/hello", "example.Greeter", "greet", rpc.Args{"nom": "Ada"})
	fmt.Println(errors.Is(err, rpc.ErrBadArguments))
	fmt.Println(err)
	// Output:
	// event from greeter: Ada was greeted
	// Hello, Ada!
	// true
	// rpc: greeter /hello example.Greeter.greet: bad arguments: missing argument "name"; unknown argument "nom"
}

// Describe tells what a node offers, with the documentation.
func ExampleNode_Describe() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, _ := slc.New(slc.WithName("greeter"))
	defer sc.Close()
	server, _ := rpc.New(sc)
	defer server.Close()
	impl, _ := rpc.NewImplementation(greeter)
	greet.Implement(impl, func(ctx context.Context, in GreetIn) (GreetOut, error) { return GreetOut{}, nil })
	server.Register("/hello", impl)
	server.Register("/lobby/hello", impl)
	addr, _ := sc.Listen(ctx, "127.0.0.1:0")

	cc, _ := slc.New(slc.WithName("visitor"))
	defer cc.Close()
	client, _ := rpc.New(cc)
	defer client.Close()
	peer, _ := client.Connect(ctx, addr.String())

	d, err := client.Describe(ctx, peer)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range d.Paths {
		for _, i := range p.Interfaces {
			fmt.Printf("%s %s: %s\n", p.Path, i.Name, i.Description)
			for _, m := range i.Methods {
				fmt.Printf("  method %s: %s\n", m.Name, m.Description)
				for _, a := range m.In {
					fmt.Printf("    in  %s %s: %s\n", a.Name, a.Type, a.Description)
				}
				for _, a := range m.Out {
					fmt.Printf("    out %s %s: %s\n", a.Name, a.Type, a.Description)
				}
			}
			for _, e := range i.Events {
				fmt.Printf("  event %s: %s\n", e.Name, e.Description)
			}
		}
	}
	// Output:
	// /hello example.Greeter: Greets visitors.
	//   method greet: Returns a greeting for a visitor, and announces the visit.
	//     in  name string: The visitor's name.
	//     out greeting string: What to say.
	//   event greeted: Someone was greeted.
	// /lobby/hello example.Greeter: Greets visitors.
	//   method greet: Returns a greeting for a visitor, and announces the visit.
	//     in  name string: The visitor's name.
	//     out greeting string: What to say.
	//   event greeted: Someone was greeted.
}

// Interfaces are checked when they are created.
func ExampleInterface_Validate() {
	bad := rpc.Interface{
		Name:        "example.Bad",
		Description: "Declares things wrongly.",
		Methods: []rpc.Method{
			{Name: "go", Description: "Fine."},
			{Name: "go", Description: "Twice."},
			{Name: "stop", In: []rpc.Argument{{Name: "when", Type: "date", Description: "Unknown type."}}},
		},
	}
	fmt.Println(bad.Validate())
	// Output:
	// rpc: invalid interface declaration: interface example.Bad: method "go" declared twice; method example.Bad.stop: no description; method example.Bad.stop (in): argument when: unknown type "date"
}
