package discovery

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/slc-go/slc/internal/wire"
)

// Record lifetimes (RFC 6762 section 10): records that name a host or its
// addresses live 120 s, the others 75 minutes.
const (
	DefaultHostTTL  = 120 * time.Second
	DefaultOtherTTL = 75 * time.Minute
)

// Responder timing.
var (
	// probeInterval separates the probes sent before announcing; the
	// name is taken when no other responder claims it within
	// probeCount*probeInterval.
	probeInterval = 80 * time.Millisecond
	probeCount    = 3
	// announceDelays are the waits before each unsolicited announcement
	// (RFC 6762 section 8.3: at least two, one second apart, doubling).
	announceDelays = []time.Duration{0, time.Second, 2 * time.Second}
	// answerBurst and answerRate bound the answers a responder sends per
	// interface, so that a flood of queries cannot turn it into one.
	answerBurst = 20.0
	answerRate  = 20.0 // per second
)

// legacyTTL caps the TTLs in answers to legacy unicast queries (RFC 6762
// section 6.7).
const legacyTTL = 10

// cacheFlush is the top bit of an answer's class: "this is the whole set
// of records with this name and type" (RFC 6762 section 10.2).
const cacheFlush = 1 << 15

// Listener is a TCP listener of the advertised node.
type Listener struct {
	// IP is the address it is bound to; nil or unspecified means every
	// address ("0.0.0.0": every IPv4 address; "::" or nil: every address).
	IP   net.IP
	Port int
}

// accepts reports whether the listener takes connections to ip.
func (l Listener) accepts(ip net.IP) bool {
	switch {
	case l.IP == nil || l.IP.Equal(net.IPv6unspecified):
		return true
	case l.IP.Equal(net.IPv4zero):
		return ip.To4() != nil
	}
	return l.IP.Equal(ip)
}

// AdvertiseConfig describes a service to advertise.
type AdvertiseConfig struct {
	// Name is the advertised name (the DNS-SD instance name).
	Name string
	// Node and Instance identify the node (its name and instance ID).
	Node     string
	Instance uint64
	// Fingerprint is the node's key fingerprint in secure mode, or "".
	Fingerprint string
	// Listeners are the node's TCP listeners. On each interface the first
	// listener that accepts connections on one of its addresses is
	// advertised, with those addresses.
	Listeners []Listener
	// Interfaces names the network interfaces to advertise on (default:
	// every multicast-capable interface that is up).
	Interfaces []string
	// Logger receives debug logs about ignored packets and failures.
	Logger *slog.Logger
	// TTL, when set, is the lifetime of every record advertised (default:
	// DefaultHostTTL and DefaultOtherTTL).
	TTL time.Duration
}

// link is what a responder advertises on one interface.
type link struct {
	ifi    *net.Interface
	port   int
	addrs  []net.IP
	tokens float64
	filled time.Time
}

// ErrNameInUse is returned by Advertise when another node answers for
// the name.
var ErrNameInUse = errors.New("slc: advertised name in use by another node")

// Responder answers mDNS queries for one advertised service. Create it
// with Advertise; Close stops it.
type Responder struct {
	cfg      AdvertiseConfig
	log      *slog.Logger
	conn     *mconn
	inst     string // instance FQDN
	host     string // host FQDN: "slc-<instance>.local."
	txt      []string
	ports    []int
	links    map[int]*link
	ttlHost  uint32
	ttlOther uint32

	mu       sync.Mutex
	state    int // stateProbing, stateAnnounced, stateClosed
	conflict chan error

	quit     chan struct{}
	wg       sync.WaitGroup
	onFail   func(error)
	failOnce sync.Once
}

const (
	stateProbing = iota
	stateAnnounced
	stateClosed
)

// Advertise opens the mDNS sockets on the configured interfaces, makes
// sure no other node answers for the name (probing, RFC 6762 section
// 8.1), announces the service and answers queries for it until Close.
// onFail, if set, is called once if the responder fails afterwards (a
// socket error); the responder is then useless and should be closed.
func Advertise(cfg AdvertiseConfig, onFail func(error)) (*Responder, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := ValidName(cfg.Name); err != nil {
		return nil, err
	}
	ifaces, err := Interfaces(cfg.Interfaces)
	if err != nil {
		return nil, err
	}
	r := &Responder{
		cfg:      cfg,
		log:      cfg.Logger.With("mdns", "responder", "name", cfg.Name),
		inst:     instanceFQDN(cfg.Name),
		host:     fmt.Sprintf("slc-%016x.%s", cfg.Instance, Domain),
		links:    map[int]*link{},
		ttlHost:  uint32(DefaultHostTTL / time.Second),
		ttlOther: uint32(DefaultOtherTTL / time.Second),
		conflict: make(chan error, 1),
		quit:     make(chan struct{}),
		onFail:   onFail,
	}
	if cfg.TTL > 0 {
		r.ttlHost = uint32(max(cfg.TTL/time.Second, 1))
		r.ttlOther = r.ttlHost
	}
	for i := range ifaces {
		if l := newLink(&ifaces[i], cfg.Listeners); l != nil {
			r.links[l.ifi.Index] = l
			if !slices.Contains(r.ports, l.port) {
				r.ports = append(r.ports, l.port)
			}
		}
	}
	if len(r.links) == 0 {
		return nil, fmt.Errorf("slc: advertise %q: no TCP listener accepts connections on an address of %s", cfg.Name, strings.Join(ifNames(ifaces), ", "))
	}
	rec := record{node: cfg.Node, instance: cfg.Instance, ports: r.ports,
		protoMin: wire.MinVersion, protoMax: wire.MaxVersion, fingerprint: cfg.Fingerprint}
	if err := rec.check(); err != nil {
		return nil, err
	}
	r.txt = rec.txt()

	var sel []net.Interface
	for _, l := range r.links {
		sel = append(sel, *l.ifi)
	}
	conn, err := openConn(sel, r.log)
	if err != nil {
		return nil, err
	}
	r.conn = conn
	for idx := range r.links {
		if !conn.on4[idx] && !conn.on6[idx] {
			delete(r.links, idx)
		}
	}
	conn.start(r.handle, r.fail)
	if err := r.probe(); err != nil {
		r.Close(false)
		return nil, err
	}
	r.mu.Lock()
	r.state = stateAnnounced
	r.mu.Unlock()
	r.wg.Add(1)
	go r.announce()
	return r, nil
}

// newLink works out what to advertise on ifi, or nil when no listener
// accepts connections on its addresses.
func newLink(ifi *net.Interface, lns []Listener) *link {
	v4, v6 := ifAddrs(ifi)
	var ips []net.IP
	for _, n := range append(v4, v6...) {
		ips = append(ips, n.IP)
	}
	for _, ln := range lns {
		var acc []net.IP
		for _, ip := range ips {
			if ln.accepts(ip) {
				acc = append(acc, ip)
			}
		}
		if len(acc) > 0 {
			sortAddrs(acc)
			return &link{ifi: ifi, port: ln.Port, addrs: acc, tokens: answerBurst, filled: time.Now()}
		}
	}
	return nil
}

// Name returns the advertised name.
func (r *Responder) Name() string { return r.cfg.Name }

// Interfaces returns the names of the interfaces the service is
// advertised on.
func (r *Responder) Interfaces() []string {
	var out []string
	for _, l := range r.links {
		out = append(out, l.ifi.Name)
	}
	slices.Sort(out)
	return out
}

func (r *Responder) fail(err error) {
	r.failOnce.Do(func() {
		r.log.Debug("mdns: responder failed", "err", err)
		if r.onFail != nil {
			r.onFail(err)
		}
	})
}

// records are one interface's resource records.
type records struct {
	ptr, srv, txt, meta dns.RR
	addrs               []dns.RR
}

// build returns the records to send on l. goodbye sets every TTL to 0;
// legacy caps them and clears the cache-flush bits.
func (r *Responder) build(l *link, goodbye, legacy bool) records {
	ttlHost, ttlOther := r.ttlHost, r.ttlOther
	var flush uint16 = cacheFlush
	switch {
	case goodbye:
		ttlHost, ttlOther = 0, 0
	case legacy:
		ttlHost, ttlOther, flush = min(ttlHost, legacyTTL), min(ttlOther, legacyTTL), 0
	}
	hdr := func(name string, t uint16, class uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: class, Ttl: ttl}
	}
	rs := records{
		ptr:  &dns.PTR{Hdr: hdr(serviceName, dns.TypePTR, dns.ClassINET, ttlOther), Ptr: r.inst},
		srv:  &dns.SRV{Hdr: hdr(r.inst, dns.TypeSRV, dns.ClassINET|flush, ttlHost), Port: uint16(l.port), Target: r.host},
		txt:  &dns.TXT{Hdr: hdr(r.inst, dns.TypeTXT, dns.ClassINET|flush, ttlOther), Txt: r.txt},
		meta: &dns.PTR{Hdr: hdr(metaQuery, dns.TypePTR, dns.ClassINET, ttlOther), Ptr: serviceName},
	}
	for _, ip := range l.addrs {
		if ip4 := ip.To4(); ip4 != nil {
			rs.addrs = append(rs.addrs, &dns.A{Hdr: hdr(r.host, dns.TypeA, dns.ClassINET|flush, ttlHost), A: ip4})
		} else {
			rs.addrs = append(rs.addrs, &dns.AAAA{Hdr: hdr(r.host, dns.TypeAAAA, dns.ClassINET|flush, ttlHost), AAAA: ip})
		}
	}
	return rs
}

func newResponse() *dns.Msg {
	m := new(dns.Msg)
	m.Response = true
	m.Authoritative = true
	m.Compress = true
	return m
}

// probe claims the name: it sends probeCount queries for it, carrying
// this node's records, and fails if another node answers for it first.
func (r *Responder) probe() error {
	q := new(dns.Msg)
	q.Question = []dns.Question{{Name: r.inst, Qtype: dns.TypeANY, Qclass: dns.ClassINET}}
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case err := <-r.conflict:
			return err
		case <-t.C:
		}
		if i == probeCount {
			return nil
		}
		sent := 0
		for idx, l := range r.links {
			rs := r.build(l, false, false)
			q.Ns = []dns.RR{rs.srv, rs.txt}
			if err := r.conn.multicast(q, idx); err != nil {
				r.log.Debug("mdns: probe not sent", "interface", l.ifi.Name, "err", err)
				continue
			}
			sent++
		}
		if sent == 0 {
			return fmt.Errorf("slc: advertise %q: could not send on any of %s", r.cfg.Name, strings.Join(r.Interfaces(), ", "))
		}
		t.Reset(probeInterval)
	}
}

// announce sends the unsolicited announcements.
func (r *Responder) announce() {
	defer r.wg.Done()
	t := time.NewTimer(announceDelays[0])
	defer t.Stop()
	for i := 0; i < len(announceDelays); i++ {
		if i > 0 {
			t.Reset(announceDelays[i])
		}
		select {
		case <-r.quit:
			return
		case <-t.C:
		}
		var errs []error
		r.mu.Lock()
		if r.state != stateAnnounced {
			r.mu.Unlock()
			return
		}
		for idx, l := range r.links {
			if err := r.conn.multicast(r.unsolicited(l, false), idx); err != nil {
				errs = append(errs, err)
			}
		}
		r.mu.Unlock()
		if len(errs) == len(r.links) {
			r.fail(fmt.Errorf("slc: advertise %q: announcement failed: %w", r.cfg.Name, errors.Join(errs...)))
			return
		}
	}
}

// unsolicited is an announcement (or goodbye) of every record.
func (r *Responder) unsolicited(l *link, goodbye bool) *dns.Msg {
	rs := r.build(l, goodbye, false)
	m := newResponse()
	m.Answer = append([]dns.RR{rs.ptr, rs.srv, rs.txt, rs.meta}, rs.addrs...)
	return m
}

// Close stops answering. With goodbye, it first announces that the
// records are gone (TTL 0), so browsers forget the service at once. It
// returns once every goroutine of the responder has ended.
func (r *Responder) Close(goodbye bool) {
	r.mu.Lock()
	wasAnnounced := r.state == stateAnnounced
	r.state = stateClosed
	if goodbye && wasAnnounced {
		for idx, l := range r.links {
			if err := r.conn.multicast(r.unsolicited(l, true), idx); err != nil {
				r.log.Debug("mdns: goodbye not sent", "interface", l.ifi.Name, "err", err)
			}
		}
	}
	r.mu.Unlock()
	select {
	case <-r.quit:
	default:
		close(r.quit)
	}
	r.conn.close()
	r.wg.Wait()
}

// handle processes one received packet (on a reader goroutine).
func (r *Responder) handle(p *packet) {
	l := r.links[p.ifi.Index]
	if l == nil {
		return
	}
	m := p.msg
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case stateClosed:
		return
	case stateProbing:
		if err := r.conflicts(p); err != nil {
			select {
			case r.conflict <- err:
			default:
			}
		}
		return
	}
	if m.Response {
		if err := r.conflicts(p); err != nil {
			r.log.Warn("mdns: another node answers for this name", "err", err)
		}
		return
	}
	if m.Opcode != dns.OpcodeQuery || m.Rcode != dns.RcodeSuccess || len(m.Question) == 0 {
		return
	}
	legacy := p.src.Port != Port
	rs := r.build(l, false, legacy)
	var ans, extra []dns.RR
	add := func(list *[]dns.RR, rrs ...dns.RR) {
		for _, rr := range rrs {
			if !containsRR(ans, rr) && !containsRR(extra, rr) {
				*list = append(*list, rr)
			}
		}
	}
	filter := func(t uint16, rrs []dns.RR) []dns.RR {
		var out []dns.RR
		for _, rr := range rrs {
			if rr.Header().Rrtype == t {
				out = append(out, rr)
			}
		}
		return out
	}
	for _, q := range m.Question {
		if c := q.Qclass &^ cacheFlush; c != dns.ClassINET && c != dns.ClassANY {
			continue
		}
		any := q.Qtype == dns.TypeANY
		switch {
		case strings.EqualFold(q.Name, serviceName) && (q.Qtype == dns.TypePTR || any):
			if !knownAnswer(m, rs.ptr) {
				add(&ans, rs.ptr)
				add(&extra, rs.srv, rs.txt)
				add(&extra, rs.addrs...)
			}
		case strings.EqualFold(q.Name, metaQuery) && (q.Qtype == dns.TypePTR || any):
			if !knownAnswer(m, rs.meta) {
				add(&ans, rs.meta)
			}
		case strings.EqualFold(q.Name, r.inst):
			if q.Qtype == dns.TypeSRV || any {
				add(&ans, rs.srv)
			}
			if q.Qtype == dns.TypeTXT || any {
				add(&ans, rs.txt)
			}
			if q.Qtype == dns.TypeSRV || q.Qtype == dns.TypeTXT || any {
				add(&extra, rs.addrs...)
			}
		case strings.EqualFold(q.Name, r.host):
			switch q.Qtype {
			case dns.TypeA, dns.TypeAAAA:
				add(&ans, filter(q.Qtype, rs.addrs)...)
			case dns.TypeANY:
				add(&ans, rs.addrs...)
			}
		}
	}
	if len(ans) == 0 {
		return
	}
	if !l.take() {
		r.log.Debug("mdns: answer rate limit reached, query ignored", "interface", l.ifi.Name, "src", p.src)
		return
	}
	resp := newResponse()
	resp.Answer = ans
	resp.Extra = extra
	if legacy {
		// A legacy querier owns its port: answer it alone, as a unicast
		// DNS server would (RFC 6762 section 6.7).
		resp.Id = m.Id
		resp.Question = m.Question
		if err := r.conn.unicast(resp, p.src, p.ifi, p.v6); err != nil {
			r.log.Debug("mdns: unicast answer not sent", "dst", p.src, "err", err)
		}
		return
	}
	// Everyone else is answered by multicast, even when the query asks
	// for a unicast answer: a unicast datagram to port 5353 reaches only
	// one of the programs that share the port on the querier's host.
	if err := r.conn.multicastOn(resp, l.ifi.Index, !p.v6, p.v6); err != nil {
		r.log.Debug("mdns: answer not sent", "interface", l.ifi.Name, "err", err)
	}
}

// take spends a token of the interface's answer budget.
func (l *link) take() bool {
	now := time.Now()
	l.tokens = min(answerBurst, l.tokens+now.Sub(l.filled).Seconds()*answerRate)
	l.filled = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// conflicts reports another node claiming this responder's name: an
// answer with an SRV or TXT record for the name whose data differs from
// ours, or, while probing, a probe for the name by a node whose records
// sort after ours (the tie-break of RFC 6762 section 8.2).
func (r *Responder) conflicts(p *packet) error {
	m := p.msg
	mine := r.build(r.links[p.ifi.Index], false, false)
	if m.Response {
		for _, rr := range slices.Concat(m.Answer, m.Extra) {
			h := rr.Header()
			if !strings.EqualFold(h.Name, r.inst) || h.Ttl == 0 {
				continue
			}
			switch v := rr.(type) {
			case *dns.SRV:
				if !strings.EqualFold(v.Target, r.host) {
					return fmt.Errorf("%w: %s answers for %q", ErrNameInUse, v.Target, r.cfg.Name)
				}
			case *dns.TXT:
				if !slices.Equal(v.Txt, mine.txt.(*dns.TXT).Txt) {
					return fmt.Errorf("%w: a node with other TXT data answers for %q (%s)", ErrNameInUse, r.cfg.Name, p.src)
				}
			}
		}
		return nil
	}
	if r.state != stateProbing {
		return nil
	}
	for _, rr := range m.Ns {
		if v, ok := rr.(*dns.SRV); ok && strings.EqualFold(v.Hdr.Name, r.inst) && !strings.EqualFold(v.Target, r.host) {
			ours := mine.srv.(*dns.SRV)
			if strings.ToLower(v.Target) > strings.ToLower(ours.Target) {
				return fmt.Errorf("%w: %s is probing for %q too", ErrNameInUse, v.Target, r.cfg.Name)
			}
		}
	}
	return nil
}

// knownAnswer reports whether the query lists rr among the answers it
// knows, with at least half its TTL left (RFC 6762 section 7.1).
func knownAnswer(q *dns.Msg, rr dns.RR) bool {
	for _, k := range q.Answer {
		if sameRR(k, rr) && k.Header().Ttl >= rr.Header().Ttl/2 {
			return true
		}
	}
	return false
}

func containsRR(list []dns.RR, rr dns.RR) bool {
	for _, x := range list {
		if sameRR(x, rr) {
			return true
		}
	}
	return false
}

// sameRR compares two records' name, type and data, ignoring TTL and the
// cache-flush bit.
func sameRR(a, b dns.RR) bool {
	ha, hb := a.Header(), b.Header()
	if ha.Rrtype != hb.Rrtype || ha.Class&^cacheFlush != hb.Class&^cacheFlush || !strings.EqualFold(ha.Name, hb.Name) {
		return false
	}
	a2, b2 := dns.Copy(a), dns.Copy(b)
	a2.Header().Class &^= cacheFlush
	b2.Header().Class &^= cacheFlush
	return dns.IsDuplicate(a2, b2)
}
