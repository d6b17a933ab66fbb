// Package snapshotter is a containerd snapshotter for overlaybd images,
// served over gRPC as a containerd proxy plugin.
//
// The layers of an overlaybd image are not unpacked: when containerd
// unpacks such a layer, the snapshotter records it as a committed "remote"
// snapshot and answers that it already exists, so containerd never fetches
// the layer blob. When a container's snapshot is prepared on top of those
// layers, the image's file system is mounted lazily through the dejavu
// backstore (lazymount), with trace prefetch, and the container gets an
// overlay mount whose lower directory is that read-only file system and
// whose upper directory is its own. Layers of ordinary images are unpacked
// into directories and stacked with overlayfs, as containerd's own overlay
// snapshotter does.
//
// Per-container choices travel as snapshot labels (see the Label
// constants): which trace to prefetch, and whether to record this start's
// reads as a new trace.
package snapshotter
