// Package containerdenv runs a containerd of the machine's own (Debian's
// containerd and runc) with a configuration, root, state and sockets of its
// own, for tests and benchmarks of the dejavu snapshotter, and finds what a
// run left behind: mounts, loop devices, shims and cgroups.
package containerdenv
