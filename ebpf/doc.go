// Package ebpf records the block requests issued to a block device with an
// eBPF program on the block_rq_issue tracepoint, filtered in the kernel by
// device number, with events delivered through a ring buffer.
//
// A start's events wait in the ring until Stop: the program wakes the
// reader only when a quarter of the ring is full, and the reader waits in
// the Go runtime's poller rather than in a system call, so that recording
// takes neither CPU nor one of the process's Ps from the start it records.
//
// It records dejavu's own loop device the same way the backstore observer
// does, and it records block devices dejavu does not serve, such as the real
// overlaybd's TCMU device. The program is CO-RE (compiled once, relocated
// against the running kernel's BTF); the compiled object is committed, so
// building needs no clang. `go generate ./ebpf` rebuilds it.
package ebpf
