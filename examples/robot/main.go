// Command robot is a small robot on a scoped bus, in one process: a
// sensor publishes readings on /robot/sensors/..., a controller listens
// on /robot/ and answers each lidar reading with a command on
// /robot/actuators/arm/ (caused by the reading), and a logger listens on
// / and prints everything. Every participant joins in Auto mode, the
// default, and none cares who serves: the first to join (the logger)
// binds the bus address and serves, the others connect to it. At the end
// the sensor asks the controller, by a remote call, how many readings it
// handled. It runs a few dozen milliseconds and exits.
//
//	go run ./examples/robot
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/bus"
)

// Reading is a sensor value.
type Reading struct {
	Sensor string
	Value  float64
	Unit   string
}

// Command tells an actuator what to do.
type Command struct {
	Actuator string
	Action   string
}

func init() {
	slc.Register[Reading]("robot.Reading")
	slc.Register[Command]("robot.Command")
}

func main() {
	addr := flag.String("bus", "127.0.0.1:0", "the bus address (port 0: a free port of that host)")
	readings := flag.Int("readings", 5, "readings per sensor")
	flag.Parse()
	if err := run(*addr, *readings); err != nil {
		fmt.Fprintln(os.Stderr, "robot:", err)
		os.Exit(1)
	}
}

func run(addr string, readings int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	addr, err := freePort(addr)
	if err != nil {
		return err
	}
	// The logger listens on the root scope. It joins first, so it finds
	// nobody serving and serves itself: the same call in every
	// participant, whoever ends up serving.
	logger, err := bus.Join(ctx, bus.WithAddr(addr), bus.WithNodeOptions(slc.WithName("logger")))
	if err != nil {
		return err
	}
	defer logger.Close()
	var mu sync.Mutex
	logged := 0
	allLogged := make(chan struct{})
	// Lidar and IMU readings, one command per lidar reading, and the
	// request and reply of the status call.
	want := 3*readings + 2
	_, err = logger.NewListener(ctx, "/", func(e *bus.Event) {
		mu.Lock()
		defer mu.Unlock()
		logged++
		fmt.Printf("logger     %-24s %-12v from %-10s seq %d\n", e.Scope, describe(e.Data), e.ID.Sender, e.ID.Seq)
		if logged == want {
			close(allLogged)
		}
	})
	if err != nil {
		return err
	}

	// The controller listens on /robot/, commands the arm, and answers
	// status calls.
	controller, err := bus.Join(ctx, bus.WithAddr(addr), bus.WithNodeOptions(slc.WithName("controller")))
	if err != nil {
		return err
	}
	defer controller.Close()
	arm, err := controller.NewInformer("/robot/actuators/arm/")
	if err != nil {
		return err
	}
	var handled sync.WaitGroup
	handled.Add(2 * readings)
	var seen struct {
		sync.Mutex
		n int
	}
	_, err = controller.NewListener(ctx, "/robot/", func(e *bus.Event) {
		r, ok := e.Data.(Reading)
		if !ok {
			return // the controller's own commands
		}
		defer handled.Done()
		seen.Lock()
		seen.n++
		seen.Unlock()
		if r.Sensor != "lidar" {
			return
		}
		action := "hold"
		if r.Value < 1 {
			action = "retract"
		}
		cmd := &bus.Event{Data: Command{Actuator: "arm", Action: action}, Causes: []bus.EventID{e.ID}}
		if err := arm.PublishEvent(ctx, cmd); err != nil {
			fmt.Fprintln(os.Stderr, "controller:", err)
		}
	})
	if err != nil {
		return err
	}
	status, err := controller.NewLocalServer(ctx, "/robot/controller/")
	if err != nil {
		return err
	}
	bus.AddMethod(status, "handled", func(context.Context, any) (int64, error) {
		seen.Lock()
		defer seen.Unlock()
		return int64(seen.n), nil
	})

	// The sensor publishes readings, then asks the controller how many it
	// handled.
	sensor, err := bus.Join(ctx, bus.WithAddr(addr), bus.WithNodeOptions(slc.WithName("sensor")))
	if err != nil {
		return err
	}
	defer sensor.Close()
	lidar, err := sensor.NewInformer("/robot/sensors/lidar/")
	if err != nil {
		return err
	}
	imu, err := sensor.NewInformer("/robot/sensors/imu/")
	if err != nil {
		return err
	}
	for i := range readings {
		if _, err := lidar.Publish(ctx, Reading{Sensor: "lidar", Value: 0.6 + 0.2*float64(i), Unit: "m"}); err != nil {
			return err
		}
		if _, err := imu.Publish(ctx, Reading{Sensor: "imu", Value: 0.01 * float64(i), Unit: "rad/s"}); err != nil {
			return err
		}
	}
	if err := sensor.Flush(ctx); err != nil {
		return err
	}
	handled.Wait()
	controllerStatus, err := sensor.NewRemoteServer(ctx, "/robot/controller/")
	if err != nil {
		return err
	}
	n, err := bus.Call[int64](ctx, controllerStatus, "handled", nil)
	if err != nil {
		return err
	}
	select {
	case <-allLogged:
	case <-ctx.Done():
		return errors.New("the logger did not get every event")
	}

	members, err := sensor.Participants(ctx)
	if err != nil {
		return err
	}
	fmt.Println()
	for _, m := range members {
		fmt.Printf("participant %-10s rank %d server %-5v listeners %v informers %v\n",
			m.Name, m.Rank, m.Server, m.Listeners, m.Informers)
	}
	mu.Lock()
	fmt.Printf("\nrobot: the controller handled %d readings; the logger logged %d events\n", n, logged)
	mu.Unlock()
	return nil
}

// freePort replaces port 0 in addr with a port of its host that was free
// a moment ago: Auto mode needs a fixed address that every participant
// knows.
func freePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "0" {
		return addr, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)), nil
}

func describe(v any) string {
	switch d := v.(type) {
	case Reading:
		return fmt.Sprintf("%s %.2f %s", d.Sensor, d.Value, d.Unit)
	case Command:
		return fmt.Sprintf("%s %s", d.Actuator, d.Action)
	}
	return fmt.Sprint(v)
}
