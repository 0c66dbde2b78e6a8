package discovery

import (
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc/supervisor"
)

// supervised runs an advertiser under a parent supervised by b, and
// returns its reports and the parent's Terminated notices.
func supervised(t *testing.T, b *supervisor.Backoff, cfg AdvertiseConfig) (reports chan Report, terminated chan struct{}, stop func()) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	reports = make(chan Report, 256)
	terminated = make(chan struct{}, 1)
	parent := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Started:
			c.Spawn(AdvertiserProps(cfg, func(r Report) {
				select {
				case reports <- r:
				default:
				}
			}))
		case *actor.Terminated:
			terminated <- struct{}{}
		}
	}, actor.WithSupervisor(b)))
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			b.CancelAll()
			sys.Root.StopFuture(parent).Wait()
			sys.Shutdown()
		}
	}
	t.Cleanup(stop)
	return reports, terminated, stop
}

func nextReport(t *testing.T, reports chan Report) Report {
	t.Helper()
	select {
	case r := <-reports:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no report from the advertiser")
		return Report{}
	}
}

// TestAdvertiserRestartsUntilRegistered: while another node holds the
// name, every registration fails and the advertiser is restarted with
// backoff; once the name is free, a restart takes it.
func TestAdvertiserRestartsUntilRegistered(t *testing.T) {
	holder := advertiseLo(t, "restart test", 0xd1, 7010, nil)
	cfg := AdvertiseConfig{Name: "restart test", Node: "restarted", Instance: 0xd2,
		Listeners: []Listener{{IP: net.IPv4(127, 0, 0, 1), Port: 7011}}, Interfaces: loOnly}
	reports, _, stop := supervised(t, &supervisor.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Retries: supervisor.Forever}, cfg)
	for i := 1; i <= 2; i++ {
		r := nextReport(t, reports)
		if !errors.Is(r.Err, ErrNameInUse) || r.Attempt != i {
			t.Fatalf("report %d: %+v, want attempt %d failing with ErrNameInUse", i, r, i)
		}
	}
	holder.Close(true)
	var ok Report
	for ok = nextReport(t, reports); ok.Err != nil; ok = nextReport(t, reports) {
	}
	if ok.Attempt < 3 {
		t.Fatalf("registered at attempt %d", ok.Attempt)
	}
	t.Logf("registered at attempt %d, once the name was free", ok.Attempt)
	svcs, err := Resolve(ctxFor(t, 2*time.Second), BrowseConfig{Interfaces: loOnly}, "restart test")
	if err != nil || svcs[0].Instance != 0xd2 {
		t.Fatalf("resolve: %+v, %v", svcs, err)
	}
	stop()
	noGoroutines(t)
}

// TestAdvertiserStopsWhenRetriesAreSpent: a registration that always
// fails is retried within the supervisor's budget, then the advertiser
// stops.
func TestAdvertiserStopsWhenRetriesAreSpent(t *testing.T) {
	cfg := AdvertiseConfig{Name: "never", Node: "n", Instance: 1, Listeners: []Listener{{Port: 1}}, Interfaces: []string{"slc-no-such-if"}}
	reports, terminated, _ := supervised(t, &supervisor.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Retries: 2}, cfg)
	for i := 1; i <= 3; i++ {
		if r := nextReport(t, reports); r.Err == nil || r.Attempt != i {
			t.Fatalf("report %d: %+v", i, r)
		}
	}
	select {
	case <-terminated:
	case <-time.After(5 * time.Second):
		t.Fatal("the advertiser was not stopped once its retries were spent")
	}
	select {
	case r := <-reports:
		t.Fatalf("a fourth attempt: %+v", r)
	default:
	}
}
