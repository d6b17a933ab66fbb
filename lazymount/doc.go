// Package lazymount mounts an overlaybd image's file system read-only,
// fetching its bytes from the registry on first use and, when the image has
// a trace, prefetching what the trace says the program will read.
//
// It joins the pieces a start needs, in the order that makes a start fast:
// the trace is looked up as soon as the manifest is resolved, prefetching
// begins as soon as the layers can be fetched (while their indexes are still
// being read), and the file system is mounted without waiting for either.
// Both the CLI's mount and run and the containerd snapshotter use it.
package lazymount
