package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/bus"
	"github.com/slc-go/slc/internal/testutil"
)

// A marker ends a listener's part of a test: events from one participant
// arrive in publication order, so once a listener has the marker
// published on its own scope ("marker:" and the scope) it has every
// earlier event it will get.
func isMarker(e *bus.Event) bool {
	s, ok := e.Data.(string)
	return ok && len(s) > 7 && s[:7] == "marker:"
}

// waitMarker waits for the marker published on scope and returns the
// other events the collector got.
func waitMarker(ctx context.Context, t *testing.T, c *collector, scope string) []string {
	t.Helper()
	for {
		var got []string
		done := false
		for _, e := range c.snapshot() {
			switch {
			case isMarker(e) && e.Data == "marker:"+scope:
				done = true
			case isMarker(e):
			default:
				got = append(got, fmt.Sprintf("%s%v", e.Scope, e.Data))
			}
		}
		if done {
			return got
		}
		select {
		case <-c.sig:
		case <-ctx.Done():
			t.Fatalf("no marker on %s: %v", scope, ctx.Err())
		}
	}
}

// TestSubscopeDelivery checks that listeners get the events of their
// scope and its subscopes, and not those of parents or siblings: on the
// server, on another participant, and on the publishing participant.
func TestSubscopeDelivery(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	addr := freeAddr(t)
	srv := join(t, addr, "sub-server")
	other := join(t, addr, "sub-other")
	pub := join(t, addr, "sub-pub")

	scopes := []string{"/robot/", "/robot/arm/", "/robot/arm/joint1/", "/robot/leg/", "/other/", "/robot/armrest/"}
	type lst struct {
		p     *bus.Participant
		scope string
		c     *collector
	}
	var listeners []lst
	for _, p := range []*bus.Participant{srv, other, pub} {
		for _, s := range []string{"/", "/robot/", "/robot/arm/", "/robot/leg/", "/robot/arm/joint1/"} {
			listeners = append(listeners, lst{p, s, listen(t, p, s)})
		}
	}
	infs := map[string]*bus.Informer{}
	for _, s := range scopes {
		inf, err := pub.NewInformer(s)
		if err != nil {
			t.Fatal(err)
		}
		infs[s] = inf
	}
	const rounds = 20
	for i := range rounds {
		for _, s := range scopes {
			if _, err := infs[s].Publish(ctx, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, l := range listeners {
		if _, ok := infs[l.scope]; !ok {
			inf, err := pub.NewInformer(l.scope)
			if err != nil {
				t.Fatal(err)
			}
			infs[l.scope] = inf
		}
		if _, err := infs[l.scope].Publish(ctx, "marker:"+l.scope); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range listeners {
		var want []string
		for i := range rounds {
			for _, s := range scopes {
				if bus.MustScope(l.scope).Receives(bus.MustScope(s)) {
					want = append(want, fmt.Sprintf("%s%d", s, i))
				}
			}
		}
		got := waitMarker(ctx, t, l.c, l.scope)
		if !slices.Equal(got, want) {
			t.Errorf("%s listener on %s got %d events %v\nwant %d %v", l.p.Name(), l.scope, len(got), got, len(want), want)
		}
	}
}

// TestInProcessDelivery checks that listeners of the publishing
// participant get its events without the network, with the semantics of
// remote delivery: converted data, order, IDs.
func TestInProcessDelivery(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	addr := freeAddr(t)
	srv := join(t, addr, "inproc-server")
	pub := join(t, addr, "inproc-pub")
	local := listen(t, pub, "/x/")
	remote := listen(t, srv, "/x/")
	inf, err := pub.NewInformer("/x/y/")
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	var ids []bus.EventID
	for i := range n {
		id, err := inf.Publish(ctx, i) // an int: both get an int64
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	lev, rev := local.wait(ctx, t, n), remote.wait(ctx, t, n)
	for i := range n {
		l, r := lev[i], rev[i]
		if l.ID != ids[i] || r.ID != ids[i] || l.Data != int64(i) || r.Data != int64(i) ||
			l.Schema != r.Schema || l.Scope != r.Scope || !l.Meta.CreateTime.Equal(r.Meta.CreateTime) {
			t.Fatalf("event %d: local %v %T, remote %v %T, id %v", i, l, l.Data, r, r.Data, ids[i])
		}
	}
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The publisher's listener got them in-process: the server did not
	// send them back.
	if st := pub.Stats(); st.Received != 0 || st.Duplicates != 0 || st.Published != n {
		t.Errorf("publisher stats %+v: events went through the network", st)
	}
	if st := srv.Stats(); st.Received != n {
		t.Errorf("server stats %+v, want %d received", st, n)
	}

	// A participant alone on its bus delivers to itself with no peer.
	alone := join(t, freeAddr(t), "inproc-alone")
	c := listen(t, alone, "/")
	inf2, err := alone.NewInformer("/solo/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inf2.Publish(ctx, "hi"); err != nil {
		t.Fatal(err)
	}
	if e := c.wait(ctx, t, 1)[0]; e.Data != "hi" || len(alone.Communicator().Peers()) != 0 {
		t.Errorf("alone: %v, peers %v", e, alone.Communicator().Peers())
	}
}

// counterClock is an injected clock: every reading is one microsecond
// after the previous one, across every participant that shares it.
type counterClock struct {
	base time.Time
	n    atomic.Int64
}

func (c *counterClock) now() time.Time {
	return c.base.Add(time.Duration(c.n.Add(1)) * time.Microsecond)
}

// TestTimestampsMonotonic checks create < send < receive < deliver for
// remote and in-process listeners, with a shared injected clock (every
// reading later than the one before), and that publisher times, infos
// and causes travel.
func TestTimestampsMonotonic(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	addr := freeAddr(t)
	clock := &counterClock{base: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	srv := join(t, addr, "ts-server", bus.WithClock(clock.now))
	mid := join(t, addr, "ts-mid", bus.WithClock(clock.now))
	pub := join(t, addr, "ts-pub", bus.WithClock(clock.now))
	collectors := map[string]*collector{
		"server":     listen(t, srv, "/ts/"),
		"remote":     listen(t, mid, "/ts/"),
		"in-process": listen(t, pub, "/ts/"),
	}
	inf, err := pub.NewInformer("/ts/")
	if err != nil {
		t.Fatal(err)
	}
	cause := bus.EventID{Sender: "elsewhere", Instance: 7, Seq: 99}
	userTime := time.Date(2020, 5, 6, 7, 8, 9, 10, time.UTC)
	const n = 200
	for i := range n {
		e := &bus.Event{Data: int64(i)}
		e.AddCause(cause)
		e.Meta.SetUserInfo("robot", "r2")
		e.Meta.SetUserTime("exposure", userTime)
		if err := inf.PublishEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
		if !e.Meta.CreateTime.After(clock.base) || e.ID.Seq == 0 {
			t.Fatalf("publish did not set the create time or ID: %+v", e)
		}
	}
	for name, c := range collectors {
		for i, e := range c.wait(ctx, t, n) {
			m := e.Meta
			if !(m.CreateTime.Before(m.SendTime) && m.SendTime.Before(m.ReceiveTime) && m.ReceiveTime.Before(m.DeliverTime)) {
				t.Errorf("%s, event %d: create %v send %v receive %v deliver %v", name, i,
					m.CreateTime.Sub(clock.base), m.SendTime.Sub(clock.base), m.ReceiveTime.Sub(clock.base), m.DeliverTime.Sub(clock.base))
			}
			if i > 0 && !c.snapshot()[i-1].Meta.DeliverTime.Before(m.DeliverTime) {
				t.Errorf("%s, event %d delivered before the one published before it", name, i)
			}
			if !slices.Equal(e.Causes, []bus.EventID{cause}) || m.UserInfos["robot"] != "r2" || !m.UserTimes["exposure"].Equal(userTime) {
				t.Errorf("%s, event %d: causes %v infos %v times %v", name, i, e.Causes, m.UserInfos, m.UserTimes)
			}
		}
	}

	// With the default clock, one per process, an event's times never
	// decrease in one process: in-process, and from one participant to
	// another (TestServerKilled checks processes on one host).
	realAddr := freeAddr(t)
	real := join(t, realAddr, "ts-real")
	real2 := join(t, realAddr, "ts-real2")
	reals := map[string]*collector{"in-process": listen(t, real, "/"), "remote": listen(t, real2, "/")}
	inf2, _ := real.NewInformer("/r/")
	for range 50 {
		if _, err := inf2.Publish(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range reals {
		for _, e := range c.wait(ctx, t, 50) {
			m := e.Meta
			if m.SendTime.Before(m.CreateTime) || m.ReceiveTime.Before(m.SendTime) || m.DeliverTime.Before(m.ReceiveTime) {
				t.Errorf("real clock, %s: create %v send %v receive %v deliver %v", name, m.CreateTime, m.SendTime, m.ReceiveTime, m.DeliverTime)
			}
		}
	}
}

func TestFilters(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	addr := freeAddr(t)
	srv := join(t, addr, "filter-server")
	a := join(t, addr, "filter-a")
	b := join(t, addr, "filter-b")
	type filtered struct {
		l    *bus.Listener
		c    *collector
		want string
	}
	lst := map[string]*filtered{}
	add := func(name, want string, f ...bus.Filter) {
		c := newCollector()
		l, err := srv.NewListener(ctx, "/f/", c.handle, bus.WithFilter(f...))
		if err != nil {
			t.Fatal(err)
		}
		lst[name] = &filtered{l, c, want}
	}
	ia, _ := a.NewInformer("/f/")
	ib, _ := b.NewInformer("/f/")
	// The cause, published where the listeners do not listen.
	ig, _ := a.NewInformer("/g/")
	first, err := ig.Publish(ctx, "cause")
	if err != nil {
		t.Fatal(err)
	}
	add("type string", "[a1 b1]", bus.TypeFilter[string]())
	add("origin a", "[2 4 a1]", bus.OriginFilter("filter-a"))
	add("schema", "[2.5]", bus.SchemaFilter(bus.SchemaDouble))
	add("method", "[3]", bus.MethodFilter("REQUEST"))
	add("not b, int", "[2 4]", bus.Not(bus.OriginFilter("filter-b")), bus.TypeFilter[int64]())
	add("cause", "[3 4]", bus.CauseFilter(first))
	// Registered last, all is the last to be given each event: once it
	// has them all, every other listener has its share queued.
	all := listen(t, srv, "/f/")
	ia.Publish(ctx, "a1")
	ib.Publish(ctx, "b1")
	ia.Publish(ctx, int64(2))
	ib.Publish(ctx, 2.5)
	ib.PublishEvent(ctx, &bus.Event{Method: "REQUEST", Data: int64(3), Causes: []bus.EventID{first}})
	ia.PublishEvent(ctx, &bus.Event{Data: int64(4), Causes: []bus.EventID{first}})
	all.wait(ctx, t, 6)
	for name, f := range lst {
		n := len(strings.Fields(strings.Trim(f.want, "[]")))
		var got []string
		for _, e := range f.c.wait(ctx, t, n) {
			got = append(got, fmt.Sprint(e.Data))
		}
		slices.Sort(got)
		if st := f.l.Stats(); fmt.Sprint(got) != f.want || st.Queued != 0 {
			t.Errorf("%s filter: %v (%+v), want %s", name, got, st, f.want)
		}
	}
}

func TestChannelListener(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	addr := freeAddr(t)
	srv := join(t, addr, "chan-server")
	pub := join(t, addr, "chan-pub")
	l, err := srv.NewChannelListener(ctx, "/c/", bus.WithBuffer(0))
	if err != nil {
		t.Fatal(err)
	}
	if l.Scope().String() != "/c/" {
		t.Errorf("scope %s", l.Scope())
	}
	inf, _ := pub.NewInformer("/c/d/")
	for i := range 100 {
		inf.Publish(ctx, int64(i))
	}
	for i := range 100 {
		select {
		case e := <-l.Events():
			if e.Data != int64(i) || e.Meta.DeliverTime.IsZero() {
				t.Fatalf("event %d: %v", i, e)
			}
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return l.Stats().Delivered == 100 }, "stats %+v", l.Stats())
	l.Close()
	for range l.Events() {
		t.Error("an event after Close")
	}
}

// TestServerLeaves closes the serving participant while another
// publishes reliably: the longest-lived survivor serves, and the
// listener gets every event once.
func TestServerLeaves(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	addr := freeAddr(t)
	srv, err := bus.Join(ctx, bus.WithAddr(addr), bus.WithNodeOptions(fastNode("leave-server")...))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	lst := join(t, addr, "leave-listener")
	pub := join(t, addr, "leave-pub")
	c := listen(t, lst, "/l/")
	inf, _ := pub.NewInformer("/l/")
	const n = 3000
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := inf.Publish(ctx, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, n/2)
	c.wait(ctx, t, n/2)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	// Published while the server is gone or going: kept by the
	// publisher and sent to the new server.
	publish(n/2, n)
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := c.wait(ctx, t, n)
	for i, e := range got {
		if e.Data != int64(i) {
			t.Fatalf("event %d is %v (%d events)", i, e.Data, len(got))
		}
	}
	if len(got) != n {
		t.Errorf("%d events, want %d", len(got), n)
	}
	waitMembership(ctx, t, pub, func(m bus.Membership) bool {
		return m.Server == "leave-listener" && m.Epoch == 2 && len(m.Members) == 2
	})
	if !lst.IsServer() || pub.Server() != "leave-listener" {
		t.Errorf("after the server left: listener serves %v, publisher's server %q", lst.IsServer(), pub.Server())
	}
	if st := pub.Stats(); st.Changeovers != 1 {
		t.Errorf("publisher stats %+v", st)
	}
}

// TestUnreliableDrops fills a listener's queue with unreliable events
// while its handler is blocked: past the queue limit they are dropped
// and counted; reliable events are not.
func TestUnreliableDrops(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	const limit, n = 10, 50
	p := join(t, freeAddr(t), "drops", bus.WithQueueLimit(limit))
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	var mu sync.Mutex
	var got []any
	handler := func(e *bus.Event) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		mu.Lock()
		got = append(got, e.Data)
		mu.Unlock()
	}
	l, err := p.NewListener(ctx, "/d/", handler)
	if err != nil {
		t.Fatal(err)
	}
	unrel, _ := p.NewInformer("/d/", bus.WithReliability(bus.Unreliable))
	rel, _ := p.NewInformer("/d/")
	for i := range n {
		if _, err := unrel.Publish(ctx, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if _, err := rel.Publish(ctx, int64(1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	// In-process delivery queues synchronously: the counts are exact
	// once the handler holds its first event.
	<-entered
	st := l.Stats()
	if int(st.Dropped)+st.Queued+1 != 2*n || st.Dropped == 0 || st.Queued < n {
		t.Errorf("stats %+v: want dropped + queued + 1 in the handler = %d", st, 2*n)
	}
	close(release)
	for {
		if s := l.Stats(); s.Delivered == uint64(2*n)-s.Dropped {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stats %+v", l.Stats())
		case <-time.After(time.Millisecond):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if tail := got[len(got)-n:]; fmt.Sprint(tail[0], tail[n-1]) != "1000 1049" {
		t.Errorf("reliable events were dropped: %v", got)
	}
	// The participant counts these and the unreliable events its own
	// outgoing queue dropped.
	if p.Stats().Dropped < l.Stats().Dropped {
		t.Errorf("participant stats %+v, listener %+v", p.Stats(), l.Stats())
	}
}

func TestUnorderedListener(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	p := join(t, freeAddr(t), "unordered")
	// Four handler calls must be in progress at once for any to return.
	const workers = 4
	var wg sync.WaitGroup
	wg.Add(workers)
	var count atomic.Int64
	done := make(chan struct{})
	_, err := p.NewListener(ctx, "/u/", func(e *bus.Event) {
		n := count.Add(1)
		if n <= workers {
			wg.Done()
			wg.Wait()
		}
		if n == 2*workers {
			close(done)
		}
	}, bus.WithOrdering(bus.Unordered), bus.WithWorkers(workers))
	if err != nil {
		t.Fatal(err)
	}
	inf, _ := p.NewInformer("/u/")
	for i := range 2 * workers {
		inf.Publish(ctx, int64(i))
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("%d handler calls: %v", count.Load(), ctx.Err())
	}
}

func TestIntrospection(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	addr := freeAddr(t)
	srv := join(t, addr, "intro-server")
	cli := join(t, addr, "intro-client", bus.WithMode(bus.ClientMode))
	listen(t, srv, "/a/")
	l, err := cli.NewListener(ctx, "/b/c/", func(*bus.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.NewInformer("/b/"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.NewLocalServer(ctx, "/svc/"); err != nil {
		t.Fatal(err)
	}
	describe := func(ps []bus.ParticipantInfo) string {
		s := ""
		for _, p := range ps {
			s += fmt.Sprintf("%s rank=%d server=%v canServe=%v informers=%v listeners=%v servers=%v; ",
				p.Name, p.Rank, p.Server, p.CanServe, p.Informers, p.Listeners, p.Servers)
		}
		return s
	}
	want := "intro-server rank=1 server=true canServe=true informers=[] listeners=[/a/] servers=[]; " +
		"intro-client rank=2 server=false canServe=false informers=[/b/ /svc/] listeners=[/b/c/ /svc/] servers=[/svc/]; "
	for _, p := range []*bus.Participant{srv, cli} {
		waitMembership(ctx, t, p, func(m bus.Membership) bool { return describe(m.Members) == want })
		ps, err := p.Participants(ctx)
		if err != nil || describe(ps) != want {
			t.Errorf("%s: %s, %v", p.Name(), describe(ps), err)
		}
		if ps[0].Host == "" || ps[0].PID == 0 || ps[1].Instance != cli.Instance() {
			t.Errorf("%s: %+v", p.Name(), ps)
		}
	}
	l.Close()
	waitMembership(ctx, t, srv, func(m bus.Membership) bool {
		return len(m.Members) == 2 && slices.Equal(m.Members[1].Listeners, []bus.Scope{bus.MustScope("/svc/")})
	})
}

func waitMembership(ctx context.Context, t *testing.T, p *bus.Participant, cond func(bus.Membership) bool) {
	t.Helper()
	for {
		m, changed := p.Membership()
		if cond(m) {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("%s: membership %+v: %v", p.Name(), m, ctx.Err())
		}
	}
}

func TestInvalidScopes(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	p := join(t, freeAddr(t), "invalid")
	for _, s := range []string{"", "a/", "/a//", "/a b/", "/é/"} {
		if _, err := p.NewInformer(s); !errors.Is(err, bus.ErrInvalidScope) {
			t.Errorf("informer on %q: %v", s, err)
		}
		if _, err := p.NewListener(ctx, s, func(*bus.Event) {}); !errors.Is(err, bus.ErrInvalidScope) {
			t.Errorf("listener on %q: %v", s, err)
		}
	}
	for _, s := range []string{"/__slc/", "/__slc/members/"} {
		if _, err := p.NewInformer(s); !errors.Is(err, bus.ErrReservedScope) {
			t.Errorf("informer on %q: %v", s, err)
		}
		if _, err := p.NewChannelListener(ctx, s); !errors.Is(err, bus.ErrReservedScope) {
			t.Errorf("listener on %q: %v", s, err)
		}
		if _, err := p.NewLocalServer(ctx, s); !errors.Is(err, bus.ErrReservedScope) {
			t.Errorf("server on %q: %v", s, err)
		}
	}
	root, _ := p.NewInformer("/")
	if err := root.PublishEvent(ctx, &bus.Event{Scope: bus.MustScope("/__slc/x/"), Data: 1}); !errors.Is(err, bus.ErrReservedScope) {
		t.Errorf("publish on the reserved scope: %v", err)
	}
	inf, _ := p.NewInformer("/a/b/")
	for _, s := range []string{"/a/", "/a/c/", "/x/"} {
		if err := inf.PublishEvent(ctx, &bus.Event{Scope: bus.MustScope(s), Data: 1}); err == nil {
			t.Errorf("an informer on /a/b/ published on %s", s)
		}
	}
	if err := inf.PublishEvent(ctx, &bus.Event{Scope: bus.MustScope("/a/b/c/"), Data: 1}); err != nil {
		t.Errorf("publish on a subscope: %v", err)
	}
	if _, err := p.NewListener(ctx, "/a/", nil); err == nil {
		t.Error("a listener without a handler")
	}
}

func TestJoinModes(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	// ServerMode on port 0: Addr is the bound address.
	srv := join(t, "127.0.0.1:0", "modes-server", bus.WithMode(bus.ServerMode))
	addr := srv.Addr()
	if addr == "127.0.0.1:0" || !srv.IsServer() {
		t.Fatalf("server mode on port 0: addr %s, serving %v", addr, srv.IsServer())
	}
	// Another ServerMode participant on the same address fails.
	_, err := bus.Join(ctx, bus.WithAddr(addr), bus.WithMode(bus.ServerMode), bus.WithNodeOptions(fastNode("modes-second")...))
	if err == nil {
		t.Error("a second server on the same address")
	}
	// ClientMode never serves; with nobody serving, Join waits for ctx.
	cli := join(t, addr, "modes-client", bus.WithMode(bus.ClientMode))
	if cli.IsServer() || cli.Server() != "modes-server" {
		t.Errorf("client: serving %v, server %q", cli.IsServer(), cli.Server())
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := bus.Join(short, bus.WithAddr(freeAddr(t)), bus.WithMode(bus.ClientMode),
		bus.WithNodeOptions(fastNode("modes-lonely")...)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a client with no server: %v", err)
	}
	for _, a := range []string{"nonsense", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:x"} {
		if _, err := bus.Join(ctx, bus.WithAddr(a)); err == nil {
			t.Errorf("join %q succeeded", a)
		}
	}
	for _, o := range []bus.Option{bus.WithWindow(0), bus.WithQueueLimit(-1), bus.WithFailover(0, time.Second),
		bus.WithClock(nil), bus.WithConverters(nil), bus.WithCommunicator(nil), bus.WithMode(bus.Mode(9))} {
		if _, err := bus.Join(ctx, o); err == nil {
			t.Error("an invalid option was accepted")
		}
	}
}

// TestClosed checks that everything fails with ErrClosed after Close.
func TestClosed(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	p, err := bus.Join(ctx, bus.WithAddr(freeAddr(t)), bus.WithNodeOptions(fastNode("closed")...))
	if err != nil {
		t.Fatal(err)
	}
	inf, _ := p.NewInformer("/x/")
	ch, err := p.NewChannelListener(ctx, "/x/")
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	p.Close()
	if _, err := inf.Publish(ctx, 1); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("publish: %v", err)
	}
	if _, err := p.NewInformer("/x/"); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("informer: %v", err)
	}
	if _, err := p.NewChannelListener(ctx, "/x/"); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("listener: %v", err)
	}
	if _, ok := <-ch.Events(); ok {
		t.Error("the channel of a closed participant is open")
	}
	inf.Close()
	if _, err := inf.Publish(ctx, 1); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("publish on a closed informer: %v", err)
	}
}

// TestReentrantCallbacks has filters and handlers call back into the
// participant (introspection, publishing) on the in-process and the
// remote paths, during a changeover too: nothing deadlocks.
func TestReentrantCallbacks(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	addr := freeAddr(t)
	srv, err := bus.Join(ctx, bus.WithAddr(addr), bus.WithNodeOptions(fastNode("reentrant-server")...))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a := join(t, addr, "reentrant-a")
	b := join(t, addr, "reentrant-b")
	echoA, _ := a.NewInformer("/echo/")
	const n = 200
	var echoed atomic.Int64
	echoes := newCollector()
	for _, p := range []*bus.Participant{a, b} {
		if _, err := p.NewListener(ctx, "/echo/", echoes.handle); err != nil {
			t.Fatal(err)
		}
	}
	// On a, the filter and the handler use the participant; the handler
	// publishes what it gets to /echo/, seen by a (in-process) and b.
	nosy := func(e *bus.Event) bool {
		a.Server()
		a.Membership()
		return a.Stats().Published >= 0
	}
	_, err = a.NewListener(ctx, "/in/", func(e *bus.Event) {
		a.Participants(ctx)
		if _, err := echoA.Publish(ctx, e.Data); err == nil {
			echoed.Add(1)
		}
	}, bus.WithFilter(nosy))
	if err != nil {
		t.Fatal(err)
	}
	inA, _ := a.NewInformer("/in/")
	inB, _ := b.NewInformer("/in/")
	for i := range n {
		if i == n/2 {
			srv.Close() // a changeover in the middle
		}
		inA.Publish(ctx, int64(i))
		inB.Publish(ctx, int64(n+i))
	}
	// Every event reached a's handler, which echoed it to two listeners.
	echoes.wait(ctx, t, 4*n)
	if echoed.Load() != 2*n {
		t.Errorf("%d echoed, want %d", echoed.Load(), 2*n)
	}
}

// TestJSONSerializer runs the bus on communicators that serialize with
// JSON instead of msgpack: events and control messages still flow.
func TestJSONSerializer(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	addr := freeAddr(t)
	json := bus.WithNodeOptions(slc.WithSerializer("json"))
	srv := join(t, addr, "json-server", json)
	pub := join(t, addr, "json-pub", json)
	c := listen(t, srv, "/j/")
	inf, _ := pub.NewInformer("/j/")
	for i := range 100 {
		inf.Publish(ctx, int64(i))
	}
	inf.Publish(ctx, Pose{X: 1, Frame: "map"})
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := c.wait(ctx, t, 101)
	for i := range 100 {
		if got[i].Data != int64(i) {
			t.Fatalf("event %d: %v", i, got[i].Data)
		}
	}
	if got[100].Data != (Pose{X: 1, Frame: "map"}) {
		t.Errorf("pose: %#v", got[100].Data)
	}
}

// TestManyJoins joins 40 participants to one server at once: each must
// be accepted. (slc may deliver a new peer's join a moment before Send
// to that peer works; the server retries its answer.)
func TestManyJoins(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	addr := freeAddr(t)
	srv := join(t, addr, "many-server")
	const n = 40
	var wg sync.WaitGroup
	ps := make([]*bus.Participant, n)
	for i := range n {
		wg.Go(func() {
			p, err := bus.Join(ctx, bus.WithAddr(addr), bus.WithMode(bus.ClientMode),
				bus.WithNodeOptions(fastNode(fmt.Sprintf("many-%02d", i))...))
			if err != nil {
				t.Errorf("join %d: %v", i, err)
				return
			}
			ps[i] = p
		})
	}
	wg.Wait()
	defer func() {
		for _, p := range ps {
			if p != nil {
				p.Close()
			}
		}
	}()
	waitMembership(ctx, t, srv, func(m bus.Membership) bool { return len(m.Members) == n+1 })
	ranks := map[uint64]bool{}
	m, _ := srv.Membership()
	for _, mi := range m.Members {
		ranks[mi.Rank] = true
	}
	if len(ranks) != n+1 {
		t.Errorf("ranks are not unique: %v", m.Members)
	}
}

// TestFlushEach publishes one event and flushes, many times: every flush
// needs the acknowledgement of the last event sent, with no traffic
// after it to carry a later one.
func TestFlushEach(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	addr := freeAddr(t)
	srv := join(t, addr, "flush-server")
	pub := join(t, addr, "flush-pub")
	sub := join(t, addr, "flush-sub")
	c := listen(t, sub, "/f/")
	listen(t, srv, "/")
	inf, _ := pub.NewInformer("/f/")
	const n = 300
	for i := range n {
		if _, err := inf.Publish(ctx, int64(i)); err != nil {
			t.Fatal(err)
		}
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := pub.Flush(fctx)
		cancel()
		if err != nil {
			t.Fatalf("flush %d: %v", i, err)
		}
	}
	c.wait(ctx, t, n)
}
