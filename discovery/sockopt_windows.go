package discovery

import "syscall"

// setSockopts lets the socket share port 5353 with other mDNS programs.
func setSockopts(fd uintptr, _ string) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
}
