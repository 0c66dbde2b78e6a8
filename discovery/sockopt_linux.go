package discovery

import "golang.org/x/sys/unix"

// setSockopts lets the socket share port 5353 with every other mDNS
// program (SO_REUSEADDR for those that set only it, SO_REUSEPORT for
// those that set only that), and turns off IP_MULTICAST_ALL so that the
// socket hears the group only on the interfaces it joined, not on every
// interface some other socket of the host joined.
func setSockopts(fd uintptr, network string) error {
	s := int(fd)
	if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	if network == "udp6" {
		_ = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		_ = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0)
	} else {
		_ = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
	}
	return nil
}
