package discovery

import (
	"fmt"
	"net"
)

// Interfaces returns the network interfaces discovery uses: the named
// ones, or, with no names, every interface that is up and
// multicast-capable. A named interface must exist and be up; it is used
// even without the MULTICAST flag (Linux's "lo" has none, yet multicast
// works on it between the processes of one host).
func Interfaces(names []string) ([]net.Interface, error) {
	if len(names) == 0 {
		all, err := net.Interfaces()
		if err != nil {
			return nil, fmt.Errorf("slc: list network interfaces: %w", err)
		}
		var out []net.Interface
		for _, ifi := range all {
			if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 {
				out = append(out, ifi)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("slc: no multicast-capable network interface is up")
		}
		return out, nil
	}
	var out []net.Interface
	seen := map[int]bool{}
	for _, name := range names {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("slc: network interface %q: %w", name, err)
		}
		if ifi.Flags&net.FlagUp == 0 {
			return nil, fmt.Errorf("slc: network interface %q is down", name)
		}
		if !seen[ifi.Index] {
			seen[ifi.Index] = true
			out = append(out, *ifi)
		}
	}
	return out, nil
}

// ifAddrs returns an interface's IPv4 and IPv6 addresses, with the
// subnets they belong to.
func ifAddrs(ifi *net.Interface) (v4, v6 []*net.IPNet) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, nil
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ip4 := n.IP.To4(); ip4 != nil {
			v4 = append(v4, &net.IPNet{IP: ip4, Mask: n.Mask[len(n.Mask)-net.IPv4len:]})
		} else if len(n.IP) == net.IPv6len {
			v6 = append(v6, n)
		}
	}
	return v4, v6
}

// onLink reports whether src may have sent a packet received on ifi: it
// is in one of the interface's subnets or link-local (RFC 6762 section
// 11). On a loopback interface only this host can send.
func onLink(ifi *net.Interface, src net.IP) bool {
	if ifi.Flags&net.FlagLoopback != 0 || src.IsLinkLocalUnicast() {
		return true
	}
	v4, v6 := ifAddrs(ifi)
	for _, n := range append(v4, v6...) {
		if n.Contains(src) {
			return true
		}
	}
	return false
}
