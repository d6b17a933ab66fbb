// Package experiment compares starts of a workload: it starts it again and
// again through a shaped link to its registry (round-trip delay,
// bandwidth), alternating modes run by run, and measures every start.
//
// With the dejavu runtime, starts are made in this process, as `dejavu run`
// makes them (package launch/timed), in the modes full, lazy, prefetch, fifo
// and warm. With the containerd runtime, a containerd of the experiment's
// own pulls the image through the dejavu snapshotter, which runs in this
// process so that every start's requests, reads and prefetch outcome can be
// seen, and `ctr run` starts it, in the modes lazy, prefetch and warm.
//
// The results are package reports' to keep, summarise and render.
package experiment
