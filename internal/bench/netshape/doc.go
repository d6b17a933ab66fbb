// Package netshape is an HTTP proxy for tests and benchmarks that puts a
// shaped, faulty network between a client and a registry: a round-trip
// delay, a bandwidth limit shared by all connections, and faults injected at
// a given rate (5xx answers, connection resets, stalls, flipped bytes). It
// counts and logs the requests it passes, so tests can assert how many a
// cold or warm start made. This kernel has no netem; this stands in for it.
package netshape
