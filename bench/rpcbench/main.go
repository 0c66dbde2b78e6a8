// Command rpcbench compares slc's remote calls (package rpc) with gRPC
// unary calls on this machine, in one process and one run, over loopback
// TCP.
//
// Both serve an echo method: the request carries a sequence number and a
// payload, and the result carries them back. slc's handler gets the
// arguments decoded (rpc.Args) and returns them; gRPC's handler decodes
// the same request from msgpack and encodes the response with msgpack
// (gRPC's raw codec, a hand-written service description: no protoc), so
// that each side serializes like for like. Every result is checked
// against its request.
//
// A cell runs calls for -duration with 1 call in flight, or with 64 (64
// goroutines, one call each at a time), after a warm-up. It reports
// calls per second and the p50 and p99 latency of the calls. The table
// shows the median of -runs runs of each cell, and slc's ratio to gRPC
// in the same run (calls/s: higher is better; latency: lower is better).
//
//	cd bench && go run ./rpcbench
//	cd bench && go run ./rpcbench -runs 5 -duration 3s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/rpc"
)

func main() {
	runs := flag.Int("runs", 3, "runs of every cell; the table shows medians")
	duration := flag.Duration("duration", 2*time.Second, "measured time of a cell")
	warmup := flag.Duration("warmup", 300*time.Millisecond, "unmeasured calls before each cell")
	size := flag.Int("size", 64, "payload bytes per call")
	only := flag.String("only", "", `measure one system only: "slc" or "grpc"`)
	flights := flag.String("inflight", "1,64", "calls in flight of the cells, comma-separated")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	var err error
	if inFlight, err = parseInts(*flights); err != nil {
		fmt.Fprintln(os.Stderr, "rpcbench: -inflight:", err)
		os.Exit(2)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rpcbench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if err := run(*runs, *duration, *warmup, *size, *only); err != nil {
		fmt.Fprintln(os.Stderr, "rpcbench:", err)
		os.Exit(1)
	}
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// caller makes one call; the benchmark checks its result.
type caller func(ctx context.Context, seq int64, payload []byte) error

// system is one side of the comparison.
type system struct {
	name  string
	call  caller
	close func()
}

// result is one cell's measurement.
type result struct {
	callsPerSec float64
	p50, p99    time.Duration
}

var inFlight = []int{1, 64}

func run(runs int, duration, warmup time.Duration, size int, only string) error {
	fmt.Printf("rpcbench: %d-byte payload, %v per cell, %d runs, GOMAXPROCS=%d, %s/%s\n",
		size, duration, runs, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	starts := []func() (*system, error){startSLC, startGRPC}
	switch only {
	case "slc":
		starts = starts[:1]
	case "grpc":
		starts = starts[1:]
	case "":
	default:
		return fmt.Errorf("-only %q: want slc or grpc", only)
	}
	// results[sys][k][run]
	results := make([][][]result, len(starts))
	names := make([]string, len(starts))
	for s := range starts {
		results[s] = make([][]result, len(inFlight))
	}
	for r := 0; r < runs; r++ {
		for k, n := range inFlight {
			// Alternate the systems within a run so drift hits both.
			for s, start := range starts {
				sys, err := start()
				if err != nil {
					return err
				}
				names[s] = sys.name
				res, err := measure(sys.call, n, duration, warmup, payload)
				sys.close()
				if err != nil {
					return fmt.Errorf("%s, %d in flight: %w", sys.name, n, err)
				}
				fmt.Printf("  run %d  %-10s  %2d in flight  %9.0f calls/s  p50 %-9v p99 %v\n",
					r+1, sys.name, n, res.callsPerSec, res.p50.Round(time.Microsecond), res.p99.Round(time.Microsecond))
				results[s][k] = append(results[s][k], res)
			}
		}
	}
	fmt.Println()
	if len(starts) == 2 {
		printTable(names, results)
	}
	return nil
}

// measure runs calls with n in flight for d after warming up for w.
func measure(call caller, n int, d, w time.Duration, payload []byte) (result, error) {
	var (
		seq      atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		lats     = make([][]time.Duration, n)
	)
	ctx, cancel := context.WithTimeout(context.Background(), w+d+30*time.Second)
	defer cancel()
	begin := time.Now()
	measureFrom := begin.Add(w)
	end := measureFrom.Add(d)
	var calls atomic.Int64
	for g := range n {
		wg.Go(func() {
			local := make([]time.Duration, 0, 1<<16)
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				if err := call(ctx, seq.Add(1), payload); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				if t0.After(measureFrom) {
					local = append(local, time.Since(t0))
					calls.Add(1)
				}
			}
			lats[g] = local
		})
	}
	wg.Wait()
	if firstErr != nil {
		return result{}, firstErr
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return result{}, errors.New("no call completed")
	}
	slices.Sort(all)
	return result{
		callsPerSec: float64(calls.Load()) / d.Seconds(),
		p50:         all[len(all)/2],
		p99:         all[min(len(all)-1, len(all)*99/100)],
	}, nil
}

func printTable(names []string, results [][][]result) {
	med := func(rs []result, f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rate := func(r result) float64 { return r.callsPerSec }
	p50 := func(r result) float64 { return float64(r.p50) }
	p99 := func(r result) float64 { return float64(r.p99) }
	// ratio is slc/gRPC of the per-run ratios' median.
	ratio := func(k int, f func(result) float64) float64 {
		a, b := results[0][k], results[1][k]
		v := make([]float64, len(a))
		for i := range a {
			v[i] = f(a[i]) / f(b[i])
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	dur := func(ns float64) string { return time.Duration(ns).Round(time.Microsecond).String() }
	fmt.Println("| system | in flight | calls/s | p50 | p99 |")
	fmt.Println("|---|---:|---:|---:|---:|")
	for k, n := range inFlight {
		for s, name := range names {
			rs := results[s][k]
			fmt.Printf("| %s | %d | %.0f | %s | %s |\n", name, n, med(rs, rate), dur(med(rs, p50)), dur(med(rs, p99)))
		}
		fmt.Printf("| **slc / gRPC** | %d | %.2f× | %.2f× | %.2f× |\n", n, ratio(k, rate), ratio(k, p50), ratio(k, p99))
	}
	fmt.Println()
	fmt.Println("Medians of the runs. Ratios are medians of the per-run ratios: calls/s above 1 means slc is faster,")
	fmt.Println("latency below 1 means slc is quicker.")
}

// --- slc ---

var echoIface = rpc.Interface{
	Name:        "bench.Echo",
	Description: "Says back what it is told.",
	Methods: []rpc.Method{{
		Name:        "echo",
		Description: "Returns its arguments.",
		In: []rpc.Argument{
			{Name: "seq", Type: rpc.TypeInt, Description: "A sequence number."},
			{Name: "data", Type: rpc.TypeBytes, Description: "A payload."},
		},
		Out: []rpc.Argument{
			{Name: "seq", Type: rpc.TypeInt, Description: "The same number."},
			{Name: "data", Type: rpc.TypeBytes, Description: "The same payload."},
		},
	}},
}

type echoArgs struct {
	Seq  int64
	Data []byte
}

var echo = rpc.MustMethod[echoArgs, echoArgs](echoIface, "echo")

func startSLC() (*system, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (*system, error) {
		closeAll()
		return nil, err
	}
	sc, err := slc.New(slc.WithName("rpc-server"))
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { sc.Close() })
	server, err := rpc.New(sc)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { server.Close() })
	impl, err := rpc.NewImplementation(echoIface)
	if err != nil {
		return fail(err)
	}
	if err := echo.Implement(impl, func(ctx context.Context, in echoArgs) (echoArgs, error) { return in, nil }); err != nil {
		return fail(err)
	}
	if err := server.Register("/echo", impl); err != nil {
		return fail(err)
	}
	addr, err := sc.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	cc, err := slc.New(slc.WithName("rpc-client"))
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { cc.Close() })
	client, err := rpc.New(cc)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { client.Close() })
	peer, err := client.Connect(ctx, addr.String())
	if err != nil {
		return fail(err)
	}
	if _, err := client.Describe(ctx, peer); err != nil {
		return fail(err)
	}
	call := func(ctx context.Context, seq int64, payload []byte) error {
		out, err := echo.Call(ctx, client, peer, "/echo", echoArgs{Seq: seq, Data: payload})
		if err != nil {
			return err
		}
		return check(seq, payload, out.Seq, out.Data)
	}
	return &system{name: "slc rpc", call: call, close: closeAll}, nil
}

func check(seq int64, payload []byte, gotSeq int64, got []byte) error {
	if gotSeq != seq || string(got) != string(payload) {
		return fmt.Errorf("call %d answered with %d (%d bytes)", seq, gotSeq, len(got))
	}
	return nil
}

// --- gRPC ---

// rawCodec passes []byte through: the messages are msgpack made by hand.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string { return "raw" }

// echoMsg is the gRPC request and response, encoded with msgpack.
type echoMsg struct {
	Seq  int64  `msgpack:"seq"`
	Data []byte `msgpack:"data"`
}

type echoService interface{}

var echoDesc = grpc.ServiceDesc{
	ServiceName: "bench.Echo",
	HandlerType: (*echoService)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			var m echoMsg
			if err := msgpack.Unmarshal(in, &m); err != nil {
				return nil, err
			}
			out, err := msgpack.Marshal(&m)
			return &out, err
		},
	}},
}

func startGRPC() (*system, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	srv.RegisterService(&echoDesc, struct{}{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	conn, err := grpc.Dial(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		srv.Stop()
		<-done
		return nil, err
	}
	call := func(ctx context.Context, seq int64, payload []byte) error {
		req, err := msgpack.Marshal(&echoMsg{Seq: seq, Data: payload})
		if err != nil {
			return err
		}
		var resp []byte
		if err := conn.Invoke(ctx, "/bench.Echo/Echo", &req, &resp); err != nil {
			return err
		}
		var m echoMsg
		if err := msgpack.Unmarshal(resp, &m); err != nil {
			return err
		}
		return check(seq, payload, m.Seq, m.Data)
	}
	return &system{name: "gRPC unary", call: call, close: func() {
		conn.Close()
		srv.Stop()
		<-done
	}}, nil
}
