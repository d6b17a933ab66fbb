// Package device exposes a read-only virtual disk to the kernel: a FUSE file
// system holding one file, that file attached to a read-only loop device
// with direct I/O, and the file system on it mounted read-only. The kernel's
// block requests then arrive as reads of the disk, one to one.
//
// Every mount leaves a small state file, so that a later process can tear
// down what a crashed one left: the mount, the loop device and the FUSE
// mount, in that order.
package device
