package ebpf

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// The ring buffer is read without ever blocking in a system call. A
// goroutine blocked in epoll_wait keeps its thread and its P (one of
// GOMAXPROCS) until the runtime's sysmon takes the P back, which takes up
// to tens of milliseconds while the process mostly waits, as it does
// while mounting; meanwhile the FUSE server answering the start's requests
// waited for a P. So the reader's own poller is only asked with a zero
// timeout, and the waiting is done by the runtime's network poller, which
// holds neither.

// past is a deadline that has passed: reads take what is in the ring and
// return.
var past = time.Unix(1, 0)

// openRing opens the ring buffer's reader and a duplicate of the map's
// descriptor for the runtime's poller to watch. The duplicate shares its
// file status with the map's own descriptor, which becomes non-blocking
// too; nothing reads that one blocking.
func (r *Recorder) openRing() error {
	rd, err := ringbuf.NewReader(r.objs.Events)
	if err != nil {
		return fmt.Errorf("ebpf: ring buffer: %w", err)
	}
	rd.SetDeadline(past)
	fd, err := unix.FcntlInt(uintptr(r.objs.Events.FD()), unix.F_DUPFD_CLOEXEC, 0)
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		rd.Close()
		return fmt.Errorf("ebpf: ring buffer: %w", err)
	}
	ring := os.NewFile(uintptr(fd), "ringbuf")
	// A deadline can be set only on a descriptor the runtime polls.
	if err := ring.SetReadDeadline(time.Time{}); err != nil {
		ring.Close()
		rd.Close()
		return fmt.Errorf("ebpf: ring buffer cannot be polled: %w", err)
	}
	r.rd, r.ring = rd, ring
	return nil
}

// wait drains the ring each time the program wakes it (once a quarter of
// the ring is waiting), until Stop.
func (r *Recorder) wait() {
	rc, err := r.ring.SyscallConn()
	if err != nil {
		r.done <- fmt.Errorf("ebpf: ring buffer: %w", err)
		return
	}
	var derr error
	err = rc.Read(func(uintptr) bool {
		derr = r.drain()
		return derr != nil // false: wait until woken again
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil // Stop
	}
	r.done <- errors.Join(derr, err)
}

// drain moves the events in the ring into r.events.
func (r *Recorder) drain() error {
	var ev blockreadEvent
	for {
		err := r.rd.ReadInto(&r.rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil // empty
		}
		if err != nil {
			return fmt.Errorf("ebpf: read ring buffer: %w", err)
		}
		if ev.unmarshal(r.rec.RawSample) != nil {
			continue
		}
		r.events = append(r.events, Event{
			Offset: int64(ev.Sector) * 512,
			Length: int64(ev.Bytes),
			Time:   time.Unix(0, int64(ev.TimeNs)+int64(r.clock)),
			Write:  ev.Write != 0,
		})
	}
}

// Stop detaches the program and returns the events it saw, in order.
func (r *Recorder) Stop() ([]Event, error) {
	// Requests issued while the link closes may or may not be seen; the
	// start being recorded is over by the time a recording stops.
	r.tp.Close()
	r.ring.SetReadDeadline(past) // ends wait
	err := <-r.done
	if err == nil {
		err = r.drain()
	}
	r.ring.Close()
	r.rd.Close()
	r.objs.Close()
	return r.events, err
}
