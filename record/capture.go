package record

import (
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/trace"
)

// Capture records one start of an image that lazymount mounts: the reads of
// its device, mapped to blob ranges once the image is open.
type Capture struct {
	rec *trace.Recorder
}

// NewCapture returns a capture whose clock starts at start: the mount's own
// reads are part of the start.
func NewCapture(start time.Time) *Capture {
	c := &Capture{rec: trace.NewRecorder()}
	c.rec.Restart(start)
	return c
}

// Restart empties the capture and starts its clock again at start.
func (c *Capture) Restart(start time.Time) { c.rec.Restart(start) }

// MountOptions are the lazymount options that feed the capture: it
// observes the device's reads and learns the image when it is opened.
func (c *Capture) MountOptions() []lazymount.Option {
	return []lazymount.Option{lazymount.WithBackstoreOptions(backstore.WithObserver(c.rec)), c.attachOption()}
}

// attachOption lets the capture map reads reported by another recorder
// (eBPF) through the image, without observing the device itself.
func (c *Capture) attachOption() lazymount.Option { return lazymount.WithOpened(c.Attach) }

// Attach maps later reads through bs, for a caller that hands out the
// open image itself (one mount serving several captures in turn).
func (c *Capture) Attach(bs *backstore.Backstore) { c.rec.Attach(bs) }

// DeviceRead and BlobFetch make the capture a backstore.Observer, for a
// caller that passes the device's events on itself.
func (c *Capture) DeviceRead(ev backstore.DeviceRead) { c.rec.DeviceRead(ev) }

// BlobFetch is part of backstore.Observer; fetches are not recorded.
func (c *Capture) BlobFetch(ev backstore.BlobFetch) { c.rec.BlobFetch(ev) }

// Trace is what was recorded, for the workload and command given; tool
// names what recorded it.
func (c *Capture) Trace(workload string, command []string, tool string) *trace.Trace {
	return c.rec.Trace(workload, command, tool)
}
