// Package record records which byte ranges of which layer blobs a program
// reads while it starts, as a trace (package trace) to prefetch from at the
// next cold start.
//
// Record starts the image's program one or more times, each from an empty
// cache and with the page cache dropped, timing each start as `dejavu run`
// does (package launch/timed), and merges the runs: ranges read in at least
// a minimum number of runs are kept. The reads are seen by dejavu's own
// device (the backstore recorder) or by an eBPF program on the block layer
// (the eBPF recorder), which can also watch a block device that dejavu does
// not serve (Device).
//
// Capture is the one piece of wiring every recording shares, whoever mounts
// the image: a recorder whose clock starts with the mount and that learns
// the image's layout when the image is opened. The experiments and the
// containerd snapshotter use it too.
package record
