// Package launch starts an image's program the way a container runtime
// would, from a mounted read-only root file system, and tells when it is
// ready.
//
// The program runs in new mount, PID, UTS and IPC namespaces, with its root
// switched into an overlay whose lower layer is the image and whose upper
// layer is a fresh directory, so it can write where programs expect to. A
// small init (this binary, started again) sets the namespaces up, runs the
// program as its child, forwards signals and reaps orphans. The host's
// network is shared, so readiness probes reach the program on loopback.
//
// Binaries that use Start must call Init first thing in main (and in
// TestMain): when the process is such an init, Init never returns.
package launch
