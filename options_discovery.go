package slc

import (
	"errors"
	"slices"
)

// WithInterfaces selects the network interfaces that mDNS discovery
// (Advertise, Discover, Connect to "mdns:NAME") uses, by name ("eth0",
// "lo"). By default it uses every interface that is up and
// multicast-capable. Naming "lo" makes discovery work between the
// processes of one host, with 127.0.0.1 advertised, even though Linux's
// loopback lacks the MULTICAST flag. The interfaces are looked up when
// discovery starts, so they may appear after New.
func WithInterfaces(names ...string) Option {
	return func(c *Config) error {
		if len(names) == 0 {
			return errors.New("slc: WithInterfaces needs at least one interface name")
		}
		for _, n := range names {
			if n == "" {
				return errors.New("slc: empty network interface name")
			}
		}
		c.Interfaces = slices.Clone(names)
		return nil
	}
}
