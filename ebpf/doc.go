// Package ebpf records the block requests issued to a block device with an
// eBPF program on the block_rq_issue tracepoint, filtered in the kernel by
// device number, with events delivered through a ring buffer.
//
// It records dejavu's own loop device the same way the backstore observer
// does, and it records block devices dejavu does not serve, such as the real
// overlaybd's TCMU device. The program is CO-RE (compiled once, relocated
// against the running kernel's BTF); the compiled object is committed, so
// building needs no clang. `go generate ./ebpf` rebuilds it.
package ebpf
