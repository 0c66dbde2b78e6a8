package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/bus"
)

// A controller serves the bus and listens on /robot/; a sensor joins and
// publishes on a subscope.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Port 0 picks a free port: ServerMode only. Others join Addr().
	controller, err := bus.Join(ctx, bus.WithAddr("127.0.0.1:0"), bus.WithMode(bus.ServerMode),
		bus.WithNodeOptions(slc.WithName("controller")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer controller.Close()
	sensor, err := bus.Join(ctx, bus.WithAddr(controller.Addr()), bus.WithNodeOptions(slc.WithName("sensor")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sensor.Close()

	robot, _ := controller.NewChannelListener(ctx, "/robot/")
	lidar, _ := sensor.NewInformer("/robot/sensors/lidar/")
	lidar.Publish(ctx, 1.25)

	e := <-robot.Events()
	fmt.Println(e.Scope, e.Schema, e.Data, "from", e.ID.Sender, "seq", e.ID.Seq)
	fmt.Println("server:", sensor.Server())
	// Output:
	// /robot/sensors/lidar/ double 1.25 from sensor seq 1
	// server: controller
}

// A LocalServer exposes methods on a scope; a RemoteServer calls them,
// and errors come back as *RemoteError.
func Example_requestReply() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := bus.Join(ctx, bus.WithAddr("127.0.0.1:0"), bus.WithMode(bus.ServerMode))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	arm, _ := p.NewLocalServer(ctx, "/robot/arm/")
	bus.AddMethod(arm, "move", func(_ context.Context, angle float64) (string, error) {
		if angle > 90 {
			return "", fmt.Errorf("angle %v out of range", angle)
		}
		return fmt.Sprintf("moved to %v°", angle), nil
	})

	client, _ := p.NewRemoteServer(ctx, "/robot/arm/")
	reply, err := bus.Call[string](ctx, client, "move", 45.0)
	fmt.Println(reply, err)
	_, err = bus.Call[string](ctx, client, "move", 120.0)
	var re *bus.RemoteError
	fmt.Println(errors.As(err, &re), re.Kind, re.Message)
	_, err = client.Call(ctx, "fly", nil)
	fmt.Println(errors.Is(err, bus.ErrUnknownMethod))
	// Output:
	// moved to 45° <nil>
	// true handler angle 120 out of range
	// true
}

// A user-defined converter gives a Go type its own wire schema.
func ExampleNewConverter() {
	type Celsius float64
	conv := bus.DefaultConverters()
	conv.Register(bus.NewConverter("text/celsius",
		func(c Celsius) ([]byte, error) { return fmt.Appendf(nil, "%gC", c), nil },
		func(b []byte) (Celsius, error) {
			var f float64
			_, err := fmt.Sscanf(strings.TrimSuffix(string(b), "C"), "%g", &f)
			return Celsius(f), err
		}))

	schema, data, _ := conv.Encode(Celsius(21.5))
	v, _, _ := conv.Decode(schema, data)
	fmt.Printf("%s %q %T %v\n", schema, data, v, v)
	// Output:
	// text/celsius "21.5C" bus_test.Celsius 21.5
}

// Introspection lists the participants and their scopes.
func ExampleParticipant_Participants() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := bus.Join(ctx, bus.WithAddr("127.0.0.1:0"), bus.WithMode(bus.ServerMode),
		bus.WithNodeOptions(slc.WithName("logger")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	a.NewListener(ctx, "/", func(*bus.Event) {})
	b, err := bus.Join(ctx, bus.WithAddr(a.Addr()), bus.WithNodeOptions(slc.WithName("camera")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	b.NewInformer("/robot/camera/")
	b.NewListener(ctx, "/robot/commands/", func(*bus.Event) {})

	members, _ := b.Participants(ctx)
	for _, m := range members {
		fmt.Println(m.Rank, m.Name, "server:", m.Server, "informers:", m.Informers, "listeners:", m.Listeners)
	}
	// Output:
	// 1 logger server: true informers: [] listeners: [/]
	// 2 camera server: false informers: [/robot/camera/] listeners: [/robot/commands/]
}
