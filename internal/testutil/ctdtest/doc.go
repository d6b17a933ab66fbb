// Package ctdtest runs a containerd of the machine's own packages with the
// dejavu snapshotter as its proxy plugin, everything under one directory,
// for integration tests: ctr commands that wait out containerd's reconnect
// to a restarted snapshotter, what the snapshotter has mounted, and a
// teardown that fails the test when anything is left behind (shims,
// container cgroups, mounts, loop devices).
//
// The test starts the snapshotter itself (in-process or as a process of its
// own) on Env.Sock with its root at Env.Root, before StartContainerd: a
// containerd that finds a proxy plugin down backs off from it for a while.
package ctdtest
