package ebpf

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Event is one block request.
type Event struct {
	Offset, Length int64 // bytes on the device
	Time           time.Time
	Write          bool
}

// Recorder collects the block requests of one device until Stop.
type Recorder struct {
	objs  blockreadObjects
	tp    link.Link
	rd    *ringbuf.Reader
	ring  *os.File      // the ring buffer map again, for the runtime's poller
	clock time.Duration // wall time minus monotonic time

	rec    ringbuf.Record
	events []Event // the waiter's until it sends on done, then Stop's
	done   chan error
}

// DevT encodes a device number the way the block tracepoints report it
// (major<<20 | minor), from a device node's path.
func DevT(path string) (uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("ebpf: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, fmt.Errorf("ebpf: %s is not a block device", path)
	}
	return unix.Major(st.Rdev)<<20 | unix.Minor(st.Rdev), nil
}

// ensureTracefs mounts tracefs when the kernel's tracing directory lacks it.
func ensureTracefs() error {
	for _, d := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(d + "/events/block/block_rq_issue"); err == nil {
			return nil
		}
	}
	if err := unix.Mount("nodev", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		return fmt.Errorf("ebpf: mount tracefs at /sys/kernel/tracing: %w", err)
	}
	if _, err := os.Stat("/sys/kernel/tracing/events/block/block_rq_issue"); err != nil {
		return fmt.Errorf("ebpf: the kernel has no block_rq_issue tracepoint: %w", err)
	}
	return nil
}

// Start loads the program, filtered to dev (DevT's encoding; 0 records
// nothing until SetDevice), and starts collecting.
func Start(dev uint32) (*Recorder, error) {
	if err := ensureTracefs(); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	_ = rlimit.RemoveMemlock()
	spec, err := loadBlockread()
	if err != nil {
		return nil, fmt.Errorf("ebpf: load program spec: %w", err)
	}
	r := &Recorder{done: make(chan error, 1)}
	if err := spec.LoadAndAssign(&r.objs, nil); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("ebpf: BPF is not allowed here (it needs root, or CAP_BPF and CAP_PERFMON): %w", err)
		}
		return nil, fmt.Errorf("ebpf: load program: %w", err)
	}
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	r.clock = time.Duration(time.Now().UnixNano() - ts.Nano())
	if r.tp, err = link.Tracepoint("block", "block_rq_issue", r.objs.BlockRqIssue, nil); err != nil {
		r.objs.Close()
		return nil, fmt.Errorf("ebpf: attach to block/block_rq_issue: %w", err)
	}
	if err := r.openRing(); err != nil {
		r.tp.Close()
		r.objs.Close()
		return nil, err
	}
	go r.wait()
	if err := r.SetDevice(dev); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// SetDevice changes the device watched, so that the program can be loaded
// ahead of a device that does not exist yet.
func (r *Recorder) SetDevice(dev uint32) error {
	if err := r.objs.Target.Put(uint32(0), dev); err != nil {
		return fmt.Errorf("ebpf: set device filter: %w", err)
	}
	return nil
}
