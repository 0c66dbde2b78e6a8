// Package discovery finds slc nodes on the local network with multicast
// DNS (RFC 6762) and DNS service discovery (RFC 6763), service type
// _slc._tcp.
//
// A Responder advertises one node under a name: it probes for the name,
// announces its PTR, SRV, TXT and address records on the selected
// interfaces, answers queries and says goodbye when it closes.
// AdvertiserProps wraps it in an actor that registers again, under its
// supervisor's backoff, whenever the registration or the responder fails;
// slc's facade runs one per advertised name.
//
// A Browser queries for _slc._tcp, every 250 ms at first so that one lost
// packet costs a quarter of a second, caches and checks what it hears, and
// reports services as they come (Discovered) and go (Lost, on a goodbye or
// when their records expire). Discover and Resolve are one-shot browses.
//
// Malformed or hostile packets are ignored with a debug log on the
// configured logger; nothing here writes to the standard log package, and
// every goroutine ends before Close (and Discover, Resolve) returns. See
// docs/discovery.md for the records, the timing, the interfaces and the
// firewall notes.
package discovery
