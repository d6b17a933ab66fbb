// Package device exposes a read-only virtual disk to the kernel: a FUSE file
// system holding one file, that file attached to a read-only loop device
// with direct I/O, and the file system on it mounted read-only. The page
// cache of the FUSE file is bypassed, so the kernel's block requests arrive
// at the Source one to one, several at a time; a Source error reaches the
// reader as EIO, never as wrong bytes.
//
// Every mount keeps a small state file (owner pid, target, loop device,
// FUSE mount point) under a state directory, so that a later process can
// tear down what a crashed or killed one left, in the order the layers
// stack: the file system, the loop device, the FUSE mount.
//
// Mounting needs root. The FUSE file system is mounted by asking the kernel
// directly; fusermount is only tried when that is refused.
package device
