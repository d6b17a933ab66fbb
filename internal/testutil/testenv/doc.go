// Package testenv holds what the project's tests share about their
// environment: where the reference fixtures live and whether the machine can
// run privileged tests (root, loop devices, FUSE, mounts, eBPF).
//
// On CI, DEJAVU_REQUIRE_PRIVILEGED=1 turns every skip for a missing capability
// or fixture into a failure, so that nothing the project promises goes
// untested there.
package testenv
