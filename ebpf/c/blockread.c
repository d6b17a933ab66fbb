// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Reports the block requests issued to one device: sector, bytes, time.
// Built with bpf2go (go generate ./ebpf); the generated objects are committed.

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// The tracepoint's record; CO-RE relocates the fields against the running
// kernel's BTF, so only the fields used are declared.
struct trace_event_raw_block_rq {
	__u32 dev;
	__u64 sector;
	__u32 nr_sector;
	__u32 bytes;
	char rwbs[8];
} __attribute__((preserve_access_index));

struct event {
	__u64 sector;
	__u64 time_ns;
	__u32 bytes;
	__u32 write;
};

// Keeps struct event in the BTF for bpf2go's -type.
const struct event *unused_event __attribute__((unused));

#define RINGBUF_BYTES (1 << 22)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGBUF_BYTES);
} events SEC(".maps");

// The reader is woken only once this much is waiting: a start's few hundred
// requests never wake it, so recording adds no work to the start it records,
// and a long recording is drained well before the ring fills.
#define WAKEUP_BYTES (RINGBUF_BYTES / 4)

// The device to watch, in the kernel's encoding, set by the loader; a map
// rather than a constant so that the program can be loaded before the
// device exists. 0 matches nothing.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target SEC(".maps");

SEC("tracepoint/block/block_rq_issue")
int block_rq_issue(struct trace_event_raw_block_rq *ctx)
{
	__u32 zero = 0;
	__u32 *dev = bpf_map_lookup_elem(&target, &zero);
	if (!dev || *dev == 0 || BPF_CORE_READ(ctx, dev) != *dev)
		return 0;
	__u32 bytes = BPF_CORE_READ(ctx, bytes);
	__u32 nr = BPF_CORE_READ(ctx, nr_sector);
	if (bytes == 0)
		bytes = nr * 512;
	if (bytes == 0)
		return 0;
	char rwbs[8];
	BPF_CORE_READ_STR_INTO(&rwbs, ctx, rwbs);
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->sector = BPF_CORE_READ(ctx, sector);
	e->time_ns = bpf_ktime_get_ns();
	e->bytes = bytes;
	e->write = rwbs[0] == 'W' || rwbs[1] == 'W';
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, flags);
	return 0;
}
