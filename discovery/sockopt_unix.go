//go:build unix && !linux

package discovery

import "golang.org/x/sys/unix"

// setSockopts lets the socket share port 5353 with every other mDNS
// program on the host.
func setSockopts(fd uintptr, network string) error {
	s := int(fd)
	if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	if network == "udp6" {
		_ = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	return nil
}
