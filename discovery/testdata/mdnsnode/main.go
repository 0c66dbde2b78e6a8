// Command mdnsnode is the helper the discovery tests run as a separate
// process: it advertises a node, or finds one and exchanges a message
// with it, and reports what happened as one JSON object per line.
//
//	mdnsnode advertise -name NAME [-iface lo] [-listen 127.0.0.1:0]
//	mdnsnode connect   -name NAME [-iface lo] [-timeout 10s]
//	mdnsnode discover  [-name NAME] [-iface lo] [-timeout 2s]
//
// "advertise" prints {"ready":true,...} once the name is announced,
// answers every raw message with "echo:" and the message, and stops
// advertising (goodbye) and exits when its standard input closes or it
// gets SIGTERM. "connect" connects to "mdns:NAME", sends a message and
// waits for the echo.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/slc-go/slc"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mdnsnode advertise|connect|discover [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	name := fs.String("name", "", "advertised name")
	node := fs.String("node", "", "node name (default: derived from -name)")
	ifaces := fs.String("iface", "", "comma-separated interfaces (default: every multicast interface)")
	listen := fs.String("listen", "127.0.0.1:0", "listen address (advertise)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to look (connect, discover)")
	verbose := fs.Bool("v", false, "debug logs to stderr")
	fs.Parse(os.Args[2:])

	var opts []slc.Option
	if *ifaces != "" {
		opts = append(opts, slc.WithInterfaces(strings.Split(*ifaces, ",")...))
	}
	if *node == "" {
		*node = fmt.Sprintf("%s-%s-%d", os.Args[1], *name, os.Getpid())
	}
	opts = append(opts, slc.WithName(*node))
	if *verbose {
		opts = append(opts, slc.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	c, err := slc.New(opts...)
	if err != nil {
		fail(err)
	}
	defer c.Close()

	switch os.Args[1] {
	case "advertise":
		advertise(c, *name, *listen)
	case "connect":
		connect(c, *name, *timeout)
	case "discover":
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		svcs, err := c.Discover(ctx, *name)
		if err != nil {
			fail(err)
		}
		report(map[string]any{"ok": true, "services": svcs})
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func report(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func fail(err error) {
	report(map[string]any{"ok": false, "err": err.Error()})
	os.Exit(1)
}

func advertise(c *slc.Communicator, name, listen string) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	addr, err := c.Listen(ctx, listen)
	if err != nil {
		fail(err)
	}
	start := time.Now()
	if err := c.Advertise(name); err != nil {
		fail(err)
	}
	report(map[string]any{"ready": true, "addr": addr.String(), "node": c.Name(), "advertise_ms": time.Since(start).Milliseconds()})
	for {
		m, err := c.Receive(ctx)
		if err != nil {
			break
		}
		if _, err := c.SendRaw(ctx, append([]byte("echo:"), m.Raw...), m.From); err != nil {
			report(map[string]any{"ok": false, "err": err.Error()})
		}
	}
	// Flush the echoes, then say goodbye.
	fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	c.Disconnect(fctx)
	cancel()
	if err := c.StopAdvertising(); err != nil {
		fail(err)
	}
	report(map[string]any{"bye": true})
}

func connect(c *slc.Communicator, name string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	id, err := c.Connect(ctx, "mdns:"+name)
	if err != nil {
		fail(fmt.Errorf("connect: %w", err))
	}
	connected := time.Since(start)
	msg := "hello from " + string(c.Name())
	if _, err := c.SendRaw(ctx, []byte(msg), id); err != nil {
		fail(fmt.Errorf("send: %w", err))
	}
	m, err := c.Receive(ctx, id)
	if err != nil {
		fail(fmt.Errorf("receive the echo (connected after %v): %w", connected, err))
	}
	if string(m.Raw) != "echo:"+msg {
		fail(fmt.Errorf("got %q, want %q", m.Raw, "echo:"+msg))
	}
	report(map[string]any{"ok": true, "peer": id, "connect_ms": connected.Milliseconds(), "reply": string(m.Raw)})
}
