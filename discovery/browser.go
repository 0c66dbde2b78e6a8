package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
)

// Browser timing. A browser queries every burstInterval during the first
// burstLength of a browse, then at intervals that double from
// slowInterval up to maxInterval (RFC 6762 section 5.2 asks for intervals
// of at least a second; the short burst is what makes one lost packet, or
// a responder that started a moment after the first query, cost a quarter
// of a second rather than a whole browse).
var (
	burstInterval = 250 * time.Millisecond
	burstLength   = 2 * time.Second
	slowInterval  = time.Second
	maxInterval   = time.Minute
	// goodbyeGrace is how long a record with TTL 0 stays in the cache
	// (RFC 6762 section 10.1), in case its owner re-asserts it.
	goodbyeGrace = time.Second
	// askInterval bounds the follow-up queries for one name.
	askInterval = 250 * time.Millisecond
)

// Cache bounds: hostile traffic cannot grow a browser without limit.
const (
	maxInstances    = 512
	maxAddrsPerHost = 32
	maxKnownAnswers = 32
	maxQuestions    = 32 // per follow-up query
	askBurst        = 10.0
	askRate         = 10.0 // follow-up queries per second
)

// EventKind tells what happened to a service.
type EventKind int

// Event kinds.
const (
	// Discovered: a service answered, or its details changed.
	Discovered EventKind = iota + 1
	// Lost: a service said goodbye, or its records expired.
	Lost
)

func (k EventKind) String() string {
	switch k {
	case Discovered:
		return "discovered"
	case Lost:
		return "lost"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Reasons a service is lost.
const (
	ReasonGoodbye = "goodbye" // its node said goodbye (stopped advertising)
	ReasonExpired = "expired" // its records expired without a refresh
	ReasonInvalid = "invalid" // its records changed into something unusable
)

// Event reports a change of a service seen by a browser.
type Event struct {
	Kind    EventKind
	Service Service
	// Reason says why a service was lost: ReasonGoodbye, ReasonExpired or
	// ReasonInvalid.
	Reason string
}

// BrowseConfig configures a Browser.
type BrowseConfig struct {
	// Interfaces names the network interfaces to browse on (default:
	// every multicast-capable interface that is up).
	Interfaces []string
	// Logger receives debug logs about ignored answers.
	Logger *slog.Logger
	// OnEvent, if set, is called for every event, on the browser's
	// goroutine: it must not block.
	OnEvent func(Event)
}

// timed is a cached record's lifetime.
type timed struct {
	received time.Time
	ttl      time.Duration
	goodbye  bool // received with TTL 0: it goes when the grace ends
}

func newTimed(now time.Time, ttl uint32) timed {
	if ttl == 0 {
		return timed{received: now, ttl: goodbyeGrace, goodbye: true}
	}
	return timed{received: now, ttl: time.Duration(ttl) * time.Second}
}

func (t timed) expires() time.Time { return t.received.Add(t.ttl) }

// instance is the browser's cache of one advertised name.
type instance struct {
	fqdn      string
	label     string
	ptr       *timed
	srv       *timed
	port      int
	target    string // lower case
	txt       *timed
	rec       *record
	lastSeen  time.Time
	reported  *Service // the last Discovered service; nil when not (or no longer) reported
	refreshes int      // refresh queries sent since the records were last renewed
	lastErr   string   // the last reason it was unusable, logged once
}

// addr is a cached address of a host.
type addr struct {
	ip  net.IP
	ifi *net.Interface
	timed
}

// Browser looks for slc services. It queries on its own schedule,
// caches what it hears, and reports services as they come and go. Create
// it with NewBrowser; Close stops it.
type Browser struct {
	cfg  BrowseConfig
	log  *slog.Logger
	conn *mconn

	in   chan *packet
	ctl  chan func()
	quit chan struct{}
	done chan struct{}
	once sync.Once

	mu     sync.Mutex
	subs   map[int]func(Event)
	nsub   int
	failed error

	// Owned by the loop goroutine.
	insts      map[string]*instance // by lower-case FQDN
	hosts      map[string][]*addr   // by lower-case host name
	burstStart time.Time
	interval   time.Duration
	nextQuery  time.Time
	fresh      bool                 // the next query carries no known answers
	asked      map[string]time.Time // follow-up queries, by lower-case name
	waiters    []*waiter            // Resolve calls
	pending    []dns.Question       // follow-up questions to send
	askTokens  float64
	askFilled  time.Time
}

// waiter is a Resolve waiting for a usable service named name that
// answered at or after since.
type waiter struct {
	name  string
	since time.Time
	found chan struct{}
}

// NewBrowser opens the mDNS sockets on the configured interfaces and
// starts browsing.
func NewBrowser(cfg BrowseConfig) (*Browser, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ifaces, err := Interfaces(cfg.Interfaces)
	if err != nil {
		return nil, err
	}
	b := &Browser{
		cfg:       cfg,
		log:       cfg.Logger.With("mdns", "browser"),
		in:        make(chan *packet, 64),
		ctl:       make(chan func()),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		subs:      map[int]func(Event){},
		insts:     map[string]*instance{},
		hosts:     map[string][]*addr{},
		asked:     map[string]time.Time{},
		askTokens: askBurst,
		askFilled: time.Now(),
	}
	conn, err := openConn(ifaces, b.log)
	if err != nil {
		return nil, err
	}
	b.conn = conn
	b.startBurst(time.Now())
	conn.start(b.receive, func(err error) {
		b.mu.Lock()
		if b.failed == nil {
			b.failed = err
		}
		b.mu.Unlock()
	})
	go b.loop()
	return b, nil
}

// receive hands a packet to the loop (on a reader goroutine).
func (b *Browser) receive(p *packet) {
	select {
	case b.in <- p:
	case <-b.quit:
	}
}

// Err returns the error that broke the browser's sockets, if any.
func (b *Browser) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failed
}

// Close stops the browser and waits until its goroutines have ended.
func (b *Browser) Close() {
	b.once.Do(func() { close(b.quit) })
	<-b.done
	b.conn.close()
}

// do runs f on the loop goroutine and waits; false if the browser is
// closed.
func (b *Browser) do(f func()) bool {
	ran := make(chan struct{})
	select {
	case b.ctl <- func() { f(); close(ran) }:
		<-ran
		return true
	case <-b.done:
		return false
	}
}

// Subscribe calls fn with every event from now on, on the browser's
// goroutine (fn must not block), until cancel is called.
func (b *Browser) Subscribe(fn func(Event)) (cancel func()) {
	b.mu.Lock()
	b.nsub++
	id := b.nsub
	b.subs[id] = fn
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	}
}

// Query starts a new burst of queries, the first without known answers,
// so that every responder answers again.
func (b *Browser) Query() { b.do(func() { b.startBurst(time.Now()) }) }

// Services returns the usable services named name ("" for all) that
// answered at or after since.
func (b *Browser) Services(name string, since time.Time) []Service {
	var out []Service
	b.do(func() {
		for _, in := range b.insts {
			if in.reported != nil && !in.lastSeen.Before(since) && matches(in.label, name) {
				out = append(out, cloneService(*in.reported))
			}
		}
	})
	slices.SortFunc(out, func(a, c Service) int {
		if d := strings.Compare(a.Name, c.Name); d != 0 {
			return d
		}
		return strings.Compare(string(a.PeerID), string(c.PeerID))
	})
	return out
}

func matches(label, name string) bool { return name == "" || strings.EqualFold(label, name) }

func cloneService(s Service) Service {
	s.Addrs = slices.Clone(s.Addrs)
	return s
}

// Collect starts a new burst of queries and returns, when ctx ends, the
// services named name ("" for all) that answered in the meantime.
func (b *Browser) Collect(ctx context.Context, name string) ([]Service, error) {
	start := time.Now()
	b.Query()
	select {
	case <-ctx.Done():
	case <-b.done:
		return nil, errors.New("slc: mdns browser closed")
	}
	out := b.Services(name, start)
	if err := b.Err(); err != nil && len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// Resolve starts a new burst of queries and returns the services named
// name as soon as one answers, or an error when ctx ends first.
func (b *Browser) Resolve(ctx context.Context, name string) ([]Service, error) {
	if name == "" {
		return nil, errors.New("slc: resolve needs a name")
	}
	w := &waiter{name: name, since: time.Now(), found: make(chan struct{})}
	defer b.do(func() { b.dropWaiter(w) })
	b.do(func() {
		b.startBurst(w.since)
		b.waiters = append(b.waiters, w)
		b.wake()
	})
	for {
		select {
		case <-w.found:
			if out := b.Services(name, w.since); len(out) > 0 {
				return out, nil
			}
			// Lost again in the meantime: wait for the next one.
			w.found = make(chan struct{})
			b.do(func() { b.waiters = append(b.waiters, w); b.wake() })
		case <-ctx.Done():
			if err := b.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("slc: no node advertises %q (%w)", name, ctx.Err())
		case <-b.done:
			return nil, errors.New("slc: mdns browser closed")
		}
	}
}

// Discover browses on the configured interfaces until ctx ends and
// returns every service named name ("" for all) that answered.
func Discover(ctx context.Context, cfg BrowseConfig, name string) ([]Service, error) {
	b, err := NewBrowser(cfg)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return b.Collect(ctx, name)
}

// Resolve browses on the configured interfaces until a service named
// name answers, and returns the services of that name, or an error when
// ctx ends first.
func Resolve(ctx context.Context, cfg BrowseConfig, name string) ([]Service, error) {
	b, err := NewBrowser(cfg)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return b.Resolve(ctx, name)
}

// --- the loop ---

func (b *Browser) loop() {
	defer close(b.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		b.expire(now)
		if !now.Before(b.nextQuery) {
			b.query(now)
		}
		next := b.refresh(now)
		b.flushAsks(now)
		if b.nextQuery.Before(next) {
			next = b.nextQuery
		}
		t.Reset(max(time.Until(next), time.Millisecond))
		select {
		case p := <-b.in:
			b.process(p)
		case f := <-b.ctl:
			f()
		case <-t.C:
		case <-b.quit:
			return
		}
	}
}

// wake signals the Resolve calls whose service is there.
func (b *Browser) wake() {
	kept := b.waiters[:0]
	for _, w := range b.waiters {
		found := false
		for _, in := range b.insts {
			if in.reported != nil && !in.lastSeen.Before(w.since) && matches(in.label, w.name) {
				found = true
				break
			}
		}
		if found {
			close(w.found)
		} else {
			kept = append(kept, w)
		}
	}
	b.waiters = kept
}

func (b *Browser) dropWaiter(w *waiter) {
	b.waiters = slices.DeleteFunc(b.waiters, func(x *waiter) bool { return x == w })
}

func (b *Browser) startBurst(now time.Time) {
	b.burstStart, b.interval, b.nextQuery, b.fresh = now, burstInterval, now, true
}

func (b *Browser) emit(ev Event) {
	if b.cfg.OnEvent != nil {
		b.cfg.OnEvent(ev)
	}
	b.mu.Lock()
	subs := make([]func(Event), 0, len(b.subs))
	for _, fn := range b.subs {
		subs = append(subs, fn)
	}
	b.mu.Unlock()
	for _, fn := range subs {
		fn(ev)
	}
}

// query sends the scheduled browse query on every interface: the PTR
// question for _slc._tcp.local., with the answers already received in
// this burst listed as known answers (RFC 6762 section 7.1), so that
// responders who were heard already stay quiet.
func (b *Browser) query(now time.Time) {
	q := new(dns.Msg)
	q.Question = []dns.Question{{Name: serviceName, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
	if !b.fresh {
		for _, in := range b.insts {
			if len(q.Answer) == maxKnownAnswers {
				break
			}
			if in.ptr == nil || in.ptr.goodbye || in.lastSeen.Before(b.burstStart) {
				continue
			}
			left := in.ptr.expires().Sub(now)
			if left < in.ptr.ttl/2 {
				continue
			}
			q.Answer = append(q.Answer, &dns.PTR{
				Hdr: dns.RR_Header{Name: serviceName, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: uint32(left / time.Second)},
				Ptr: in.fqdn})
		}
	}
	b.fresh = false
	b.send(q)
	if now.Sub(b.burstStart) >= burstLength {
		if b.interval < slowInterval {
			b.interval = slowInterval
		} else {
			b.interval = min(b.interval*2, maxInterval)
		}
	}
	b.nextQuery = now.Add(b.interval)
}

func (b *Browser) send(q *dns.Msg) {
	for _, idx := range b.conn.indexes() {
		if err := b.conn.multicast(q, idx); err != nil {
			b.log.Debug("mdns: query not sent", "err", err)
		}
	}
}

// ask sends a follow-up query for records a service still lacks (or that
// are about to expire), at most once per askInterval per name.
func (b *Browser) ask(now time.Time, force bool, qs ...dns.Question) {
	var out []dns.Question
	for _, q := range qs {
		key := strings.ToLower(q.Name) + "/" + strconv.Itoa(int(q.Qtype))
		if t, ok := b.asked[key]; ok && now.Sub(t) < askInterval && !force {
			continue
		}
		b.asked[key] = now
		out = append(out, q)
	}
	if len(b.asked) > 4*maxInstances {
		for k, t := range b.asked {
			if now.Sub(t) >= askInterval {
				delete(b.asked, k)
			}
		}
	}
	b.pending = append(b.pending, out...)
}

// flushAsks sends the follow-up questions gathered, a few dozen to a
// query, within a budget of queries per second: a flood of hostile
// answers cannot make the browser flood the link with questions.
// Questions over budget are dropped, to be asked again later.
func (b *Browser) flushAsks(now time.Time) {
	for len(b.pending) > 0 {
		b.askTokens = min(askBurst, b.askTokens+now.Sub(b.askFilled).Seconds()*askRate)
		b.askFilled = now
		if b.askTokens < 1 {
			for _, q := range b.pending {
				delete(b.asked, strings.ToLower(q.Name)+"/"+strconv.Itoa(int(q.Qtype)))
			}
			b.log.Debug("mdns: follow-up query budget spent, questions dropped", "questions", len(b.pending))
			b.pending = b.pending[:0]
			return
		}
		b.askTokens--
		n := min(len(b.pending), maxQuestions)
		m := new(dns.Msg)
		m.Question = slices.Clone(b.pending[:n])
		b.send(m)
		b.pending = b.pending[n:]
	}
	b.pending = nil
}

func (b *Browser) askInstance(now time.Time, in *instance, force bool) {
	qs := []dns.Question{
		{Name: in.fqdn, Qtype: dns.TypeSRV, Qclass: dns.ClassINET},
		{Name: in.fqdn, Qtype: dns.TypeTXT, Qclass: dns.ClassINET},
	}
	if in.target != "" {
		qs = append(qs,
			dns.Question{Name: in.target, Qtype: dns.TypeA, Qclass: dns.ClassINET},
			dns.Question{Name: in.target, Qtype: dns.TypeAAAA, Qclass: dns.ClassINET})
	}
	b.ask(now, force, qs...)
}

// process takes in a response: records of slc instances and the
// addresses of their hosts. Everything else is ignored; hostile or
// malformed records are dropped with a debug log.
func (b *Browser) process(p *packet) {
	m := p.msg
	if !m.Response {
		return
	}
	if p.src.Port != Port {
		b.log.Debug("mdns: ignored a response not sent from port 5353", "src", p.src, "interface", p.ifi.Name)
		return
	}
	if m.Opcode != dns.OpcodeQuery || m.Rcode != dns.RcodeSuccess {
		b.log.Debug("mdns: ignored a response with a non-zero opcode or rcode", "src", p.src, "opcode", m.Opcode, "rcode", m.Rcode)
		return
	}
	now := time.Now()
	rrs := slices.Concat(m.Answer, m.Extra)
	touched := map[*instance]bool{}
	get := func(fqdn string) *instance {
		key := strings.ToLower(fqdn)
		if in := b.insts[key]; in != nil {
			return in
		}
		label, ok := instanceLabel(fqdn)
		if !ok {
			b.log.Debug("mdns: ignored a record for an invalid instance name", "name", fqdn, "src", p.src)
			return nil
		}
		if len(b.insts) >= maxInstances && !b.evict() {
			b.log.Debug("mdns: instance cache full of usable services, record ignored", "name", fqdn, "src", p.src)
			return nil
		}
		in := &instance{fqdn: fqdn, label: label}
		b.insts[key] = in
		return in
	}
	// TXT records first: an SRV record is checked against its TXT.
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *dns.PTR:
			if !strings.EqualFold(v.Hdr.Name, serviceName) || v.Hdr.Class&^cacheFlush != dns.ClassINET {
				continue
			}
			if in := get(v.Ptr); in != nil {
				t := newTimed(now, v.Hdr.Ttl)
				in.ptr = &t
				b.seen(in, t, now)
				touched[in] = true
			}
		case *dns.TXT:
			if !hasSuffixFold(v.Hdr.Name, "."+serviceName) || v.Hdr.Class&^cacheFlush != dns.ClassINET {
				continue
			}
			in := get(v.Hdr.Name)
			if in == nil {
				continue
			}
			t := newTimed(now, v.Hdr.Ttl)
			if t.goodbye {
				if in.txt != nil {
					in.txt = &t
					touched[in] = true
				}
				continue
			}
			rec, err := parseTXT(v.Txt)
			if err != nil {
				b.log.Debug("mdns: ignored a TXT record", "name", in.label, "src", p.src, "err", err)
				continue
			}
			in.txt, in.rec = &t, rec
			b.seen(in, t, now)
			touched[in] = true
		}
	}
	for _, rr := range rrs {
		v, ok := rr.(*dns.SRV)
		if !ok || !hasSuffixFold(v.Hdr.Name, "."+serviceName) || v.Hdr.Class&^cacheFlush != dns.ClassINET {
			continue
		}
		in := get(v.Hdr.Name)
		if in == nil {
			continue
		}
		t := newTimed(now, v.Hdr.Ttl)
		if t.goodbye {
			if in.srv != nil {
				in.srv = &t
				touched[in] = true
			}
			continue
		}
		if err := checkSRV(v, in.rec); err != nil {
			b.log.Debug("mdns: ignored an SRV record", "name", in.label, "src", p.src, "err", err)
			continue
		}
		in.srv, in.port, in.target = &t, int(v.Port), strings.ToLower(v.Target)
		b.seen(in, t, now)
		touched[in] = true
	}
	// Addresses, only of hosts that some instance points to.
	targets := map[string]bool{}
	for _, in := range b.insts {
		if in.target != "" {
			targets[in.target] = true
		}
	}
	flushed := map[string]bool{}
	hostsTouched := map[string]bool{}
	for _, rr := range rrs {
		var ip net.IP
		switch v := rr.(type) {
		case *dns.A:
			ip = v.A.To4()
		case *dns.AAAA:
			ip = v.AAAA
		default:
			continue
		}
		h := rr.Header()
		host := strings.ToLower(h.Name)
		if !targets[host] || h.Class&^cacheFlush != dns.ClassINET {
			continue
		}
		loop := p.ifi.Flags&net.FlagLoopback != 0
		if !usableAddr(ip, loop) {
			b.log.Debug("mdns: ignored an address record", "host", h.Name, "ip", ip, "interface", p.ifi.Name, "src", p.src)
			continue
		}
		key := host + "/" + strconv.Itoa(int(h.Rrtype))
		if h.Class&cacheFlush != 0 && !flushed[key] {
			// Cache flush (RFC 6762 section 10.2): this packet carries the
			// whole set; older records of the set go after a second.
			flushed[key] = true
			for _, a := range b.hosts[host] {
				if (a.ip.To4() != nil) == (h.Rrtype == dns.TypeA) && now.Sub(a.received) > time.Second && !a.goodbye {
					a.timed = timed{received: now, ttl: time.Second}
				}
			}
		}
		b.addAddr(host, ip, p.ifi, newTimed(now, h.Ttl))
		hostsTouched[host] = true
	}
	if len(hostsTouched) > 0 {
		for _, in := range b.insts {
			if hostsTouched[in.target] {
				touched[in] = true
			}
		}
	}
	for in := range touched {
		b.evaluate(in, now, p.src)
	}
	if len(b.waiters) > 0 && len(touched) > 0 {
		b.wake()
	}
	b.flushAsks(now)
}

// evict makes room in a full cache: the instance that is not a usable
// service and was heard from least recently goes.
func (b *Browser) evict() bool {
	var key string
	var oldest *instance
	for k, in := range b.insts {
		if in.reported == nil && (oldest == nil || in.lastSeen.Before(oldest.lastSeen)) {
			key, oldest = k, in
		}
	}
	if oldest == nil {
		return false
	}
	b.log.Debug("mdns: instance cache full, evicted an unusable instance", "evicted", oldest.label)
	delete(b.insts, key)
	return true
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// seen records that fresh records of in arrived.
func (b *Browser) seen(in *instance, t timed, now time.Time) {
	if !t.goodbye {
		in.lastSeen = now
		in.refreshes = 0
	}
}

func checkSRV(v *dns.SRV, rec *record) error {
	switch {
	case v.Port == 0:
		return errors.New("port 0")
	case v.Target == "" || v.Target == ".":
		return errors.New("no target host")
	case rec != nil && !slices.Contains(rec.ports, int(v.Port)):
		return fmt.Errorf("port %d is not among the ports %v of its TXT record", v.Port, rec.ports)
	}
	return nil
}

func (b *Browser) addAddr(host string, ip net.IP, ifi *net.Interface, t timed) {
	list := b.hosts[host]
	for _, a := range list {
		if a.ip.Equal(ip) && a.ifi.Index == ifi.Index {
			a.timed = t
			return
		}
	}
	if t.goodbye {
		return
	}
	if len(list) >= maxAddrsPerHost {
		b.log.Debug("mdns: too many addresses for a host, ignored", "host", host, "ip", ip)
		return
	}
	b.hosts[host] = append(list, &addr{ip: ip, ifi: ifi, timed: t})
}

// service builds in's Service from the cache, or says why it cannot.
func (b *Browser) service(in *instance, now time.Time) (*Service, error) {
	switch {
	case in.srv != nil && in.srv.goodbye, in.ptr != nil && in.ptr.goodbye:
		return nil, errGone
	case in.srv == nil, in.txt == nil || in.txt.goodbye || in.rec == nil:
		return nil, errIncomplete
	}
	if err := checkSRV(&dns.SRV{Port: uint16(in.port), Target: in.target}, in.rec); err != nil {
		return nil, err
	}
	if !in.rec.compatible() {
		return nil, fmt.Errorf("it speaks protocol versions %d-%d, this node %d-%d", in.rec.protoMin, in.rec.protoMax, wire.MinVersion, wire.MaxVersion)
	}
	var ips []net.IP
	zone := map[string]string{}
	for _, a := range b.hosts[in.target] {
		if a.goodbye || !a.expires().After(now) {
			continue
		}
		s := a.ip.String()
		if _, dup := zone[s]; dup {
			continue
		}
		zone[s] = ""
		if a.ip.IsLinkLocalUnicast() && a.ip.To4() == nil {
			zone[s] = a.ifi.Name
		}
		ips = append(ips, a.ip)
	}
	if len(ips) == 0 {
		return nil, errIncomplete
	}
	sortAddrs(ips)
	s := &Service{Name: in.label, PeerID: peer.ID(in.rec.node), Port: in.port, Instance: in.rec.instance, Fingerprint: in.rec.fingerprint}
	for _, ip := range ips {
		h := ip.String()
		if z := zone[h]; z != "" {
			h += "%" + z
		}
		s.Addrs = append(s.Addrs, net.JoinHostPort(h, strconv.Itoa(in.port)))
	}
	return s, nil
}

var (
	errGone       = errors.New("gone")
	errIncomplete = errors.New("incomplete")
)

// evaluate reports in's changes as events, and asks for what it lacks.
func (b *Browser) evaluate(in *instance, now time.Time, src *net.UDPAddr) {
	s, err := b.service(in, now)
	switch {
	case err == nil:
		in.lastErr = ""
		if in.reported == nil || !reflect.DeepEqual(*in.reported, *s) {
			in.reported = s
			b.emit(Event{Kind: Discovered, Service: cloneService(*s)})
		}
	case errors.Is(err, errGone) || in.reported != nil && errors.Is(err, errIncomplete) && b.saidGoodbye(in):
		b.lose(in, ReasonGoodbye)
	case errors.Is(err, errIncomplete):
		if in.reported == nil && in.lastSeen.Equal(now) {
			b.askInstance(now, in, false)
		}
	default:
		if msg := err.Error(); msg != in.lastErr {
			in.lastErr = msg
			b.log.Debug("mdns: ignored a service", "name", in.label, "src", src, "err", err)
		}
		b.lose(in, ReasonInvalid)
	}
}

func (b *Browser) saidGoodbye(in *instance) bool {
	if in.txt != nil && in.txt.goodbye || in.srv != nil && in.srv.goodbye || in.ptr != nil && in.ptr.goodbye {
		return true
	}
	addrs := b.hosts[in.target]
	if len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if !a.goodbye {
			return false
		}
	}
	return true
}

func (b *Browser) lose(in *instance, reason string) {
	if in.reported == nil {
		return
	}
	s := *in.reported
	in.reported = nil
	b.emit(Event{Kind: Lost, Service: s, Reason: reason})
}

// expire drops the records whose time is up and reports the services
// that went with them.
func (b *Browser) expire(now time.Time) {
	live := func(t *timed) *timed {
		if t != nil && !t.expires().After(now) {
			return nil
		}
		return t
	}
	for host, list := range b.hosts {
		kept := list[:0]
		for _, a := range list {
			if a.expires().After(now) {
				kept = append(kept, a)
			}
		}
		if len(kept) == 0 {
			delete(b.hosts, host)
		} else {
			b.hosts[host] = kept
		}
	}
	for key, in := range b.insts {
		goodbye := b.saidGoodbye(in)
		in.ptr, in.srv, in.txt = live(in.ptr), live(in.srv), live(in.txt)
		if in.reported != nil {
			if _, err := b.service(in, now); err != nil {
				reason := ReasonExpired
				if goodbye {
					reason = ReasonGoodbye
				}
				b.lose(in, reason)
			}
		}
		if in.ptr == nil && in.srv == nil && in.txt == nil {
			delete(b.insts, key)
		}
	}
}

// refresh asks again for the records of reported services that reach
// 80%, 85%, 90% and 95% of their lifetime (RFC 6762 section 5.2), and
// returns when it next needs to run.
func (b *Browser) refresh(now time.Time) time.Time {
	next := now.Add(time.Hour)
	for _, in := range b.insts {
		if in.reported == nil {
			continue
		}
		// The record that expires first decides.
		var first *timed
		for _, t := range []*timed{in.ptr, in.srv, in.txt} {
			if t != nil && (first == nil || t.expires().Before(first.expires())) {
				first = t
			}
		}
		for _, a := range b.hosts[in.target] {
			if first == nil || a.expires().Before(first.expires()) {
				t := a.timed
				first = &t
			}
		}
		if first == nil {
			continue
		}
		if first.expires().Before(next) {
			next = first.expires()
		}
		if first.goodbye || in.refreshes >= 4 {
			continue
		}
		due := first.received.Add(first.ttl * time.Duration(80+5*in.refreshes) / 100)
		if !now.Before(due) {
			in.refreshes++
			b.askInstance(now, in, true)
			due = first.received.Add(first.ttl * time.Duration(80+5*in.refreshes) / 100)
		}
		if due.Before(next) {
			next = due
		}
	}
	return next
}
