// Package metrics makes the Prometheus registry that dejavu's mounts and
// snapshotter report into and serves it over HTTP.
//
// There is no global registry: NewRegistry returns a fresh one, callers
// register their collectors on it and hand it to Serve. The registry
// carries the Go runtime and process collectors, so a scrape shows the
// daemon's memory, goroutines and file descriptors next to its fetches.
package metrics
