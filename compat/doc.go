// Package compat holds what slc's bridges to older messaging systems
// share. Each system has its own package, which speaks that system's wire
// protocol byte for byte:
//
//   - compat/serpy: the serpy and serpy2 protocols of the Python serpy
//     module (lab instruments), as client and server, with auto-restart.
//   - compat/rsb: the socket transport of RSB, the Robotics Service Bus:
//     serve or join an RSB socket bus, and bridge it to an slc bus.
//   - compat/spread: a client of the Spread 4 daemon (group
//     communication): connect, join, leave, multicast, membership.
//
// docs/compat.md says what each package supports and refuses.
//
// # Reconnecting
//
// Backoff is the reconnect policy of the clients that reconnect by
// themselves (serpy and RSB). It has the shape and the defaults of slc's
// own supervisor.Backoff: the delay before attempt n is
// Initial*Multiplier^(n-1), scaled by a random factor in
// [1-Jitter, 1+Jitter] and capped at Max, and Retries bounds the
// consecutive failed attempts.
package compat
