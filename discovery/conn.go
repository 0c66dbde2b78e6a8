package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"syscall"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The mDNS multicast groups.
var (
	groupV4 = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: Port}
	groupV6 = &net.UDPAddr{IP: net.ParseIP("ff02::fb"), Port: Port}
)

// packet is a DNS message received on one of the selected interfaces.
type packet struct {
	msg  *dns.Msg
	ifi  *net.Interface
	src  *net.UDPAddr
	v6   bool
	size int
}

// mconn is a pair of UDP sockets (IPv4, IPv6) bound to port 5353 and
// joined to the mDNS groups on the selected interfaces.
//
// Port 5353 is shared: every mDNS program on the host binds it with
// SO_REUSEADDR (and SO_REUSEPORT). The kernel hands a multicast datagram
// to every one of those sockets, but a unicast datagram to port 5353 to
// only one of them. So slc never relies on unicast to port 5353: its
// queries go out from port 5353 without the unicast-response bit, which
// makes every responder answer by multicast, and its responder answers
// port-5353 queriers by multicast too. Only legacy queriers (source port
// other than 5353, which own their port) get unicast answers.
type mconn struct {
	v4     *ipv4.PacketConn
	v6     *ipv6.PacketConn
	ifaces map[int]*net.Interface // by index: the selected interfaces
	on4    map[int]bool           // interfaces whose IPv4 group join succeeded
	on6    map[int]bool
	log    *slog.Logger

	mu     sync.Mutex // serializes SetMulticastInterface+WriteTo where control messages cannot pick the interface
	wg     sync.WaitGroup
	closed chan struct{}
	once   sync.Once
}

// openConn opens the sockets and joins the groups on ifaces. IPv6 is best
// effort: when it is unavailable discovery runs on IPv4 alone. It fails
// when no IPv4 or IPv6 join succeeded.
func openConn(ifaces []net.Interface, log *slog.Logger) (*mconn, error) {
	c := &mconn{ifaces: map[int]*net.Interface{}, on4: map[int]bool{}, on6: map[int]bool{}, log: log, closed: make(chan struct{})}
	for i := range ifaces {
		c.ifaces[ifaces[i].Index] = &ifaces[i]
	}
	lc := net.ListenConfig{Control: func(network, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = setSockopts(fd, network) }); err != nil {
			return err
		}
		return serr
	}}
	var err4, err6 error
	if pc, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", Port)); err != nil {
		err4 = err
	} else {
		setReadBuffer(pc)
		c.v4 = ipv4.NewPacketConn(pc)
		_ = c.v4.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true)
		_ = c.v4.SetMulticastTTL(255)
		_ = c.v4.SetMulticastLoopback(true) // other programs on this host must hear us
		for idx, ifi := range c.ifaces {
			if err := c.v4.JoinGroup(ifi, &net.UDPAddr{IP: groupV4.IP}); err != nil {
				log.Debug("mdns: IPv4 group join failed", "interface", ifi.Name, "err", err)
				continue
			}
			c.on4[idx] = true
		}
		if len(c.on4) == 0 {
			c.v4.Close()
			c.v4 = nil
			err4 = errors.New("no interface joined the IPv4 group")
		}
	}
	if pc, err := lc.ListenPacket(context.Background(), "udp6", fmt.Sprintf("[::]:%d", Port)); err != nil {
		err6 = err
	} else {
		setReadBuffer(pc)
		c.v6 = ipv6.NewPacketConn(pc)
		_ = c.v6.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true)
		_ = c.v6.SetMulticastHopLimit(255)
		_ = c.v6.SetMulticastLoopback(true)
		for idx, ifi := range c.ifaces {
			if ifi.Flags&net.FlagMulticast == 0 {
				// IPv6 multicast needs the flag (IPv4 on Linux's lo does not).
				continue
			}
			if err := c.v6.JoinGroup(ifi, &net.UDPAddr{IP: groupV6.IP}); err != nil {
				log.Debug("mdns: IPv6 group join failed", "interface", ifi.Name, "err", err)
				continue
			}
			c.on6[idx] = true
		}
		if len(c.on6) == 0 {
			c.v6.Close()
			c.v6 = nil
			err6 = errors.New("no interface joined the IPv6 group")
		}
	}
	if c.v4 == nil && c.v6 == nil {
		return nil, fmt.Errorf("slc: mdns: cannot listen on UDP port %d of %s: IPv4: %v; IPv6: %v", Port, ifNames(ifaces), err4, err6)
	}
	if err6 != nil {
		log.Debug("mdns: IPv6 unavailable, using IPv4 only", "err", err6)
	}
	if err4 != nil {
		log.Debug("mdns: IPv4 unavailable, using IPv6 only", "err", err4)
	}
	return c, nil
}

// readBuffer is the receive buffer asked for: answers from many nodes
// arrive at once after a query.
const readBuffer = 1 << 20

func setReadBuffer(pc net.PacketConn) {
	if u, ok := pc.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(readBuffer) // best effort: the system caps it
	}
}

func ifNames(ifaces []net.Interface) []string {
	out := make([]string, len(ifaces))
	for i, ifi := range ifaces {
		out[i] = ifi.Name
	}
	return out
}

// start runs one reader per socket. handle is called on the reader's
// goroutine for each well-formed DNS message received on a selected
// interface; fail is called once if a socket fails for another reason
// than close.
func (c *mconn) start(handle func(*packet), fail func(error)) {
	if c.v4 != nil {
		c.wg.Add(1)
		go c.read(func(b []byte) (int, int, net.Addr, error) {
			n, cm, src, err := c.v4.ReadFrom(b)
			idx := 0
			if cm != nil {
				idx = cm.IfIndex
			}
			return n, idx, src, err
		}, false, handle, fail)
	}
	if c.v6 != nil {
		c.wg.Add(1)
		go c.read(func(b []byte) (int, int, net.Addr, error) {
			n, cm, src, err := c.v6.ReadFrom(b)
			idx := 0
			if cm != nil {
				idx = cm.IfIndex
			}
			return n, idx, src, err
		}, true, handle, fail)
	}
}

func (c *mconn) read(readFrom func([]byte) (int, int, net.Addr, error), v6 bool, handle func(*packet), fail func(error)) {
	defer c.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, idx, src, err := readFrom(buf)
		if err != nil {
			select {
			case <-c.closed:
			default:
				if fail != nil {
					fail(fmt.Errorf("slc: mdns: read: %w", err))
				}
			}
			return
		}
		ifi := c.ifaces[idx]
		if ifi == nil && idx == 0 && len(c.ifaces) == 1 {
			// No control messages on this platform: with one interface
			// selected, everything comes from it.
			for _, only := range c.ifaces {
				ifi = only
			}
		}
		if ifi == nil {
			continue // another interface's traffic (IP_MULTICAST_ALL): not ours to hear
		}
		udp, ok := src.(*net.UDPAddr)
		if !ok {
			continue
		}
		if !onLink(ifi, udp.IP) {
			c.log.Debug("mdns: ignored a packet from off-link", "interface", ifi.Name, "src", udp)
			continue
		}
		c.dispatch(buf[:n], ifi, udp, v6, handle)
	}
}

// dispatch parses one datagram and hands it on. Hostile input must never
// take the process down: a panic while parsing or handling it is logged
// and the packet dropped.
func (c *mconn) dispatch(b []byte, ifi *net.Interface, src *net.UDPAddr, v6 bool, handle func(*packet)) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Warn("mdns: dropped a packet that caused a panic", "src", src, "interface", ifi.Name, "panic", r)
		}
	}()
	msg := new(dns.Msg)
	if err := msg.Unpack(b); err != nil {
		c.log.Debug("mdns: ignored a malformed packet", "src", src, "interface", ifi.Name, "len", len(b), "err", err)
		return
	}
	handle(&packet{msg: msg, ifi: ifi, src: src, v6: v6, size: len(b)})
}

// multicast sends msg to the mDNS group on the interface with index idx,
// over IPv4 and IPv6 where joined. It returns an error only when no send
// succeeded.
func (c *mconn) multicast(msg *dns.Msg, idx int) error {
	return c.multicastOn(msg, idx, true, true)
}

func (c *mconn) multicastOn(msg *dns.Msg, idx int, on4, on6 bool) error {
	b, err := msg.Pack()
	if err != nil {
		return err
	}
	ifi := c.ifaces[idx]
	if ifi == nil {
		return fmt.Errorf("slc: mdns: interface %d not selected", idx)
	}
	var errs []error
	sent := false
	if on4 && c.v4 != nil && c.on4[idx] {
		if err := c.write4(b, ifi, groupV4); err != nil {
			errs = append(errs, err)
		} else {
			sent = true
		}
	}
	if on6 && c.v6 != nil && c.on6[idx] {
		if err := c.write6(b, ifi, groupV6); err != nil {
			errs = append(errs, err)
		} else {
			sent = true
		}
	}
	if sent {
		return nil
	}
	if len(errs) == 0 {
		return nil // nothing joined for this family on that interface
	}
	return fmt.Errorf("slc: mdns: send on %s: %w", ifi.Name, errors.Join(errs...))
}

// unicast sends msg to dst through the interface it came from.
func (c *mconn) unicast(msg *dns.Msg, dst *net.UDPAddr, ifi *net.Interface, v6 bool) error {
	b, err := msg.Pack()
	if err != nil {
		return err
	}
	if v6 {
		if c.v6 == nil {
			return nil
		}
		return c.write6(b, ifi, dst)
	}
	if c.v4 == nil {
		return nil
	}
	return c.write4(b, ifi, dst)
}

func cmSupported() bool {
	switch runtime.GOOS {
	case "linux", "darwin", "ios":
		return true
	}
	return false
}

func (c *mconn) write4(b []byte, ifi *net.Interface, dst *net.UDPAddr) error {
	if cmSupported() {
		_, err := c.v4.WriteTo(b, &ipv4.ControlMessage{IfIndex: ifi.Index}, dst)
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.v4.SetMulticastInterface(ifi); err != nil {
		return err
	}
	_, err := c.v4.WriteTo(b, nil, dst)
	return err
}

func (c *mconn) write6(b []byte, ifi *net.Interface, dst *net.UDPAddr) error {
	if cmSupported() {
		_, err := c.v6.WriteTo(b, &ipv6.ControlMessage{IfIndex: ifi.Index}, dst)
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.v6.SetMulticastInterface(ifi); err != nil {
		return err
	}
	_, err := c.v6.WriteTo(b, nil, dst)
	return err
}

// close closes the sockets and waits for the readers to return.
func (c *mconn) close() {
	c.once.Do(func() {
		close(c.closed)
		if c.v4 != nil {
			c.v4.Close()
		}
		if c.v6 != nil {
			c.v6.Close()
		}
	})
	c.wg.Wait()
}

// indexes returns the selected interfaces' indexes that joined a group.
func (c *mconn) indexes() []int {
	var out []int
	for idx := range c.ifaces {
		if c.on4[idx] || c.on6[idx] {
			out = append(out, idx)
		}
	}
	return out
}
