package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/slc-go/slc/internal/testutil"
)

// Every test here stays on the loopback interface: no mDNS on a real one.
var loOnly = []string{"lo"}

// logRecorder is a slog handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{l: l, attrs: as}
}
func (l *logRecorder) WithGroup(string) slog.Handler { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	return (&attrHandler{l: l}).Handle(context.Background(), r)
}

type attrHandler struct {
	l     *logRecorder
	attrs []slog.Attr
}

func (h *attrHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *attrHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{l: h.l, attrs: append(slices.Clone(h.attrs), as...)}
}
func (h *attrHandler) WithGroup(string) slog.Handler { return h }
func (h *attrHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.l.mu.Lock()
	h.l.recs = append(h.l.recs, b.String())
	h.l.mu.Unlock()
	return nil
}

// has reports whether a record contains every part.
func (l *logRecorder) has(parts ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, r := range l.recs {
		for _, p := range parts {
			if !strings.Contains(r, p) {
				continue next
			}
		}
		return true
	}
	return false
}

// levels returns the level of each record that contains every part.
func (l *logRecorder) levels(parts ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, r := range l.recs {
		for _, p := range parts {
			if !strings.Contains(r, p) {
				continue next
			}
		}
		level, _, _ := strings.Cut(r, " ")
		out = append(out, level)
	}
	return out
}

func (l *logRecorder) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.recs, "\n")
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// noGoroutines fails if a goroutine of this package is still running:
// Close, and Discover and Resolve, must have ended them all on return.
//
// A goroutine that has signalled its end (wg.Done in its last deferred
// call) is still listed for the few instructions until it returns, so
// the check allows it a moment to go.
func noGoroutines(t *testing.T) {
	t.Helper()
	left := func() string {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "slc/discovery.(*") && !strings.Contains(g, "testing.tRunner") {
				return g
			}
		}
		return ""
	}
	deadline := time.Now().Add(time.Second)
	for g := left(); g != ""; g = left() {
		if time.Now().After(deadline) {
			t.Fatalf("a discovery goroutine outlived its owner:\n%s", g)
		}
		time.Sleep(time.Millisecond)
	}
}

func advertiseLo(t *testing.T, name string, instance uint64, port int, log *slog.Logger) *Responder {
	t.Helper()
	r, err := Advertise(AdvertiseConfig{Name: name, Node: "node-" + name, Instance: instance,
		Listeners: []Listener{{IP: net.IPv4(127, 0, 0, 1), Port: port}}, Interfaces: loOnly, Logger: log}, nil)
	if err != nil {
		t.Fatalf("advertise %q: %v", name, err)
	}
	t.Cleanup(func() { r.Close(true) })
	return r
}

func TestAdvertiseAndBrowseOnLoopback(t *testing.T) {
	a := advertiseLo(t, "lo test a", 0xa, 7001, nil)
	b := advertiseLo(t, "lo test b", 0xb, 7002, nil)
	if got := a.Interfaces(); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("advertised on %v, want [lo]", got)
	}
	svcs, err := Discover(ctxFor(t, 600*time.Millisecond), BrowseConfig{Interfaces: loOnly}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Service{
		"lo test a": {Name: "lo test a", PeerID: "node-lo test a", Addrs: []string{"127.0.0.1:7001"}, Port: 7001, Instance: 0xa},
		"lo test b": {Name: "lo test b", PeerID: "node-lo test b", Addrs: []string{"127.0.0.1:7002"}, Port: 7002, Instance: 0xb},
	}
	found := 0
	for _, s := range svcs {
		if w, ok := want[s.Name]; ok {
			found++
			if fmt.Sprint(s) != fmt.Sprint(w) {
				t.Errorf("got %+v, want %+v", s, w)
			}
		}
	}
	if found != 2 {
		t.Fatalf("found %d of 2 services in %+v", found, svcs)
	}
	// A name filter.
	svcs, err = Resolve(ctxFor(t, 2*time.Second), BrowseConfig{Interfaces: loOnly}, "LO TEST B")
	if err != nil || len(svcs) != 1 || svcs[0].Instance != 0xb {
		t.Fatalf("resolve: %+v, %v", svcs, err)
	}
	a.Close(true)
	b.Close(true)
	noGoroutines(t)
}

func TestGoodbyeIsServiceLost(t *testing.T) {
	br, err := NewBrowser(BrowseConfig{Interfaces: loOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	evs := make(chan Event, 16)
	defer br.Subscribe(func(ev Event) {
		if ev.Service.Name == "goodbye test" {
			evs <- ev
		}
	})()
	r := advertiseLo(t, "goodbye test", 0x66, 7003, nil)
	ctx := ctxFor(t, 5*time.Second)
	next := func() Event {
		select {
		case ev := <-evs:
			return ev
		case <-ctx.Done():
			t.Fatal("no event")
			return Event{}
		}
	}
	if ev := next(); ev.Kind != Discovered {
		t.Fatalf("first event %+v", ev)
	}
	stopped := time.Now()
	r.Close(true)
	ev := next()
	if ev.Kind != Lost || ev.Reason != ReasonGoodbye || ev.Service.Instance != 0x66 {
		t.Fatalf("after goodbye: %+v", ev)
	}
	t.Logf("ServiceLost %v after the goodbye", time.Since(stopped))
	// Gone for a new collection too.
	if svcs := br.Services("goodbye test", time.Time{}); len(svcs) != 0 {
		t.Fatalf("still listed: %+v", svcs)
	}
}

// injector sends crafted mDNS packets to 224.0.0.251:5353 on lo.
type injector struct {
	t    *testing.T
	c    *mconn
	lo   *net.Interface
	next uint64
}

func newInjector(t *testing.T) *injector {
	ifaces, err := Interfaces(loOnly)
	if err != nil {
		t.Fatal(err)
	}
	c, err := openConn(ifaces, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return &injector{t: t, c: c, lo: &ifaces[0]}
}

func (in *injector) send(m *dns.Msg) {
	in.t.Helper()
	if err := in.c.multicastOn(m, in.lo.Index, true, false); err != nil {
		in.t.Fatal(err)
	}
}

func (in *injector) raw(b []byte) {
	in.t.Helper()
	if err := in.c.write4(b, in.lo, groupV4); err != nil {
		in.t.Fatal(err)
	}
}

// service returns a response advertising a service, for the test to
// spoil.
func service(label string, srvPort int, txt []string, ip net.IP, ttl uint32) *dns.Msg {
	inst := instanceFQDN(label)
	host := strings.ReplaceAll(escapeLabel(label), `\`, "") + "-host.local."
	host = strings.ReplaceAll(host, " ", "-")
	m := new(dns.Msg)
	m.Response = true
	m.Answer = []dns.RR{
		&dns.PTR{Hdr: dns.RR_Header{Name: serviceName, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl}, Ptr: inst},
		&dns.TXT{Hdr: dns.RR_Header{Name: inst, Rrtype: dns.TypeTXT, Class: dns.ClassINET | cacheFlush, Ttl: ttl}, Txt: txt},
		&dns.SRV{Hdr: dns.RR_Header{Name: inst, Rrtype: dns.TypeSRV, Class: dns.ClassINET | cacheFlush, Ttl: ttl}, Port: uint16(srvPort), Target: host},
	}
	if ip != nil {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: host, Rrtype: dns.TypeA, Class: dns.ClassINET | cacheFlush, Ttl: ttl}, A: ip})
	}
	return m
}

func txtFor(node string, ports string) []string {
	return []string{"txtvers=1", "node=" + node, "inst=00000000000000aa", "proto=1", "ports=" + ports}
}

// TestHostileAnswersAreIgnored injects malformed and hostile answers on
// lo and checks that the browser ignores each, with a debug log, keeps
// the one valid service, and keeps working.
func TestHostileAnswersAreIgnored(t *testing.T) {
	logs := &logRecorder{}
	br, err := NewBrowser(BrowseConfig{Interfaces: loOnly, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	evs := make(chan Event, 1024)
	defer br.Subscribe(func(ev Event) { evs <- ev })()
	in := newInjector(t)
	lo := net.IPv4(127, 0, 0, 1)

	// Junk that is not DNS at all, and a truncated message.
	in.raw([]byte("\x00\x00\x84\x00\x00\x00\x00\x05junk"))
	good, _ := service("hostile good", 4000, txtFor("good-node", "4000"), lo, 120).Pack()
	in.raw(good[:len(good)-7])
	// A port that is not the one the TXT record lists.
	in.send(service("hostile wrong port", 4001, txtFor("wp", "5000"), lo, 120))
	// Port 0.
	in.send(service("hostile port zero", 0, txtFor("pz", "4000"), lo, 120))
	// Junk TXT records.
	in.send(service("hostile junk txt", 4000, []string{"txtvers=1", "node=", "inst=zz", "ports=x"}, lo, 120))
	in.send(service("hostile bad utf8", 4000, txtFor(`\255\254`, "4000"), lo, 120))
	in.send(service("hostile no version", 4000, []string{"node=n", "inst=1", "proto=1", "ports=4000"}, lo, 120))
	// Addresses nobody can dial.
	in.send(service("hostile zero addr", 4000, txtFor("za", "4000"), net.IPv4zero, 120))
	in.send(service("hostile multicast addr", 4000, txtFor("ma", "4000"), net.IPv4(224, 0, 0, 1), 120))
	// An instance name with a control character, and a PTR out of the service.
	bad := service("x", 4000, txtFor("cc", "4000"), lo, 120)
	bad.Answer[0].(*dns.PTR).Ptr = `bad\007name.` + serviceName
	bad.Answer = bad.Answer[:1]
	in.send(bad)
	// An answer sent from another port than 5353.
	other, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	b, _ := service("hostile from port", 4000, txtFor("fp", "4000"), lo, 120).Pack()
	if _, err := other.WriteTo(b, groupV4); err != nil {
		t.Fatal(err)
	}
	// A flood of distinct names, past the cache bound, 16 to a packet.
	for i := 0; i < maxInstances+50; i += 16 {
		m := new(dns.Msg)
		m.Response = true
		for j := i; j < i+16; j++ {
			m.Answer = append(m.Answer, service(fmt.Sprintf("flood %d", j), 4000, txtFor("flood", "4000"), nil, 120).Answer...)
		}
		in.send(m)
	}
	// And the one valid service, then a hostile SRV for it with a wrong port.
	in.send(service("hostile good", 4000, txtFor("good-node", "4000"), lo, 120))
	spoil := service("hostile good", 4002, txtFor("good-node", "4000"), lo, 120)
	spoil.Answer = spoil.Answer[2:3]
	in.send(spoil)

	for _, want := range [][]string{
		{"malformed packet"},
		{"ignored an SRV record", "hostile wrong port", "not among the ports"},
		{"ignored an SRV record", "hostile port zero", "port 0"},
		{"ignored a TXT record", "hostile junk txt"},
		{"ignored a TXT record", "hostile bad utf8", "not a valid node name"},
		{"ignored a TXT record", "hostile no version", "txtvers"},
		{"ignored an address record", "ip=0.0.0.0"},
		{"ignored an address record", "ip=224.0.0.1"},
		{"invalid instance name", `bad\007name`},
		{"not sent from port 5353"},
		{"instance cache full"},
		{"ignored an SRV record", "hostile good", "port 4002"},
	} {
		testutil.Eventually(t, 5*time.Second, func() bool { return logs.has(want...) },
			"no debug log with %q; logs:\n%s", want, logs.dump())
		// Hostile answers are routine on a shared network: they are
		// logged at debug level only, never as warnings or errors.
		for _, level := range logs.levels(want...) {
			if level != slog.LevelDebug.String() {
				t.Errorf("log with %q at level %s, want %s; logs:\n%s", want, level, slog.LevelDebug, logs.dump())
			}
		}
	}
	// Only the valid service was reported, unspoiled, and the browser
	// still works.
	got := br.Services("", time.Time{})
	var names []string
	for _, s := range got {
		// (Other tests' services may be on lo too.)
		if strings.HasPrefix(s.Name, "hostile ") || strings.HasPrefix(s.Name, "flood ") && s.PeerID == "flood" {
			names = append(names, s.Name)
		}
	}
	if len(names) != 1 || names[0] != "hostile good" {
		t.Fatalf("services: %v", names)
	}
	for _, s := range got {
		if s.Name == "hostile good" && (s.Port != 4000 || s.PeerID != "good-node") {
			t.Fatalf("spoiled: %+v", s)
		}
	}
	for {
		select {
		case ev := <-evs:
			if ev.Kind == Lost && ev.Service.Name == "hostile good" {
				t.Fatalf("the valid service was lost: %+v", ev)
			}
			continue
		default:
		}
		break
	}
	r := advertiseLo(t, "after hostile", 0x77, 7004, nil)
	defer r.Close(true)
	if _, err := br.Resolve(ctxFor(t, 2*time.Second), "after hostile"); err != nil {
		t.Fatal(err)
	}
}

func TestExpiredServiceIsLost(t *testing.T) {
	br, err := NewBrowser(BrowseConfig{Interfaces: loOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	evs := make(chan Event, 16)
	defer br.Subscribe(func(ev Event) {
		if ev.Service.Name == "short lived" {
			evs <- ev
		}
	})()
	in := newInjector(t)
	// A service whose node vanished without a goodbye: nothing answers the
	// refresh queries.
	in.send(service("short lived", 4100, txtFor("sl", "4100"), net.IPv4(127, 0, 0, 1), 1))
	ctx := ctxFor(t, 5*time.Second)
	for _, want := range []EventKind{Discovered, Lost} {
		select {
		case ev := <-evs:
			if ev.Kind != want || want == Lost && ev.Reason != ReasonExpired {
				t.Fatalf("got %+v, want %v", ev, want)
			}
		case <-ctx.Done():
			t.Fatalf("no %v event", want)
		}
	}
}

// TestResponderSurvivesHostileQueries sends junk and odd queries to a
// responder, then checks it still answers, by multicast and to a legacy
// unicast querier.
func TestResponderSurvivesHostileQueries(t *testing.T) {
	logs := &logRecorder{}
	r := advertiseLo(t, "hostile queries", 0x88, 7005, slog.New(logs))
	defer r.Close(true)
	in := newInjector(t)
	in.raw([]byte{0, 1, 2})
	q := new(dns.Msg)
	q.Question = []dns.Question{{Name: "\x00weird.", Qtype: dns.TypeANY, Qclass: dns.ClassANY}}
	in.send(q)
	q.Opcode = dns.OpcodeUpdate
	q.Question = []dns.Question{{Name: serviceName, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
	in.send(q)
	testutil.Eventually(t, 2*time.Second, func() bool { return logs.has("malformed packet") }, "no log of the junk; logs:\n%s", logs.dump())
	for _, level := range logs.levels("malformed packet") {
		if level != slog.LevelDebug.String() {
			t.Errorf("junk query logged at level %s, want %s; logs:\n%s", level, slog.LevelDebug, logs.dump())
		}
	}

	// A legacy querier (not port 5353) gets a unicast answer, with its
	// ID and question, and TTLs capped at 10 s.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lq := new(dns.Msg)
	lq.SetQuestion(instanceFQDN("hostile queries"), dns.TypeSRV)
	b, _ := lq.Pack()
	var ans dns.Msg
	for ans.Id != lq.Id {
		if _, err := c.WriteTo(b, groupV4); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 9000)
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no unicast answer: %v", err)
		}
		if err := ans.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
	}
	if len(ans.Question) != 1 || len(ans.Answer) != 1 {
		t.Fatalf("answer %v", &ans)
	}
	srv, ok := ans.Answer[0].(*dns.SRV)
	if !ok || srv.Port != 7005 || srv.Hdr.Ttl > legacyTTL || srv.Hdr.Class != dns.ClassINET {
		t.Fatalf("answer %v", &ans)
	}
	if _, err := Resolve(ctxFor(t, 2*time.Second), BrowseConfig{Interfaces: loOnly}, "hostile queries"); err != nil {
		t.Fatal(err)
	}
}

func TestNameConflict(t *testing.T) {
	a := advertiseLo(t, "conflict test", 0xc1, 7006, nil)
	_, err := Advertise(AdvertiseConfig{Name: "conflict test", Node: "other", Instance: 0xc2,
		Listeners: []Listener{{Port: 7007}}, Interfaces: loOnly}, nil)
	if !errors.Is(err, ErrNameInUse) {
		t.Fatalf("second advertiser of the name: %v, want ErrNameInUse", err)
	}
	a.Close(true)
	b := advertiseLo(t, "conflict test", 0xc2, 7007, nil)
	b.Close(true)
	noGoroutines(t)
}

func TestAdvertiseErrors(t *testing.T) {
	for name, cfg := range map[string]AdvertiseConfig{
		"no such interface": {Name: "e", Node: "n", Instance: 1, Listeners: []Listener{{Port: 1}}, Interfaces: []string{"slc-no-such-if"}},
		"listener elsewhere": {Name: "e", Node: "n", Instance: 1,
			Listeners: []Listener{{IP: net.ParseIP("192.0.2.99"), Port: 1}}, Interfaces: loOnly},
		"bad name":    {Name: "", Node: "n", Instance: 1, Listeners: []Listener{{Port: 1}}, Interfaces: loOnly},
		"no instance": {Name: "e", Node: "n", Listeners: []Listener{{Port: 1}}, Interfaces: loOnly},
	} {
		if r, err := Advertise(cfg, nil); err == nil {
			r.Close(false)
			t.Errorf("%s: no error", name)
		}
	}
	noGoroutines(t)
}

// TestResolveAfterTheServiceWasSeen: a browser that already heard a
// service (its announcement arrived before Resolve started) must still
// resolve it when it answers again, although nothing about it changed
// and so no Discovered event comes. (A Resolve that waited for events
// missed exactly this case, in 1 round of 20 between processes.)
func TestResolveAfterTheServiceWasSeen(t *testing.T) {
	advertiseLo(t, "seen before", 0x99, 7030, nil)
	br, err := NewBrowser(BrowseConfig{Interfaces: loOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	testutil.Eventually(t, 2*time.Second, func() bool { return len(br.Services("seen before", time.Time{})) == 1 },
		"the browser did not hear the service")
	start := time.Now()
	svcs, err := br.Resolve(ctxFor(t, 2*time.Second), "seen before")
	if err != nil || len(svcs) != 1 {
		t.Fatalf("resolve: %+v, %v", svcs, err)
	}
	t.Logf("resolved in %v", time.Since(start))
}
