package record

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/ebpf"
	"github.com/dejavu-project/dejavu/trace"
)

// Device records, with eBPF, the reads of a block device that dejavu does
// not serve (such as overlaybd's own) for d or until ctx ends, mapping them
// through the indexes of ref, the image the device holds: only its headers
// and indexes are fetched. It returns the trace and the number of block
// requests seen. Needs root.
func Device(ctx context.Context, devicePath, ref string, d time.Duration, opts ...Option) (*trace.Trace, int, error) {
	c := newConfig(opts)
	devt, err := ebpf.DevT(devicePath)
	if err != nil {
		return nil, 0, fmt.Errorf("record: %w", err)
	}
	cache, err := os.MkdirTemp("", "dejavu-record-")
	if err != nil {
		return nil, 0, fmt.Errorf("record: %w", err)
	}
	defer os.RemoveAll(cache)
	bs, err := backstore.Open(ctx, ref, backstore.WithCacheDir(cache), backstore.WithRefOptions(c.refOpts...), backstore.WithLogger(c.log))
	if err != nil {
		return nil, 0, err
	}
	defer bs.Close()
	p, err := ebpf.Start(devt)
	if err != nil {
		return nil, 0, fmt.Errorf("record: %w", err)
	}
	capture := NewCapture(time.Now())
	c.log.Info("recording block device reads", "device", devicePath, "for", d)
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	events, err := p.Stop()
	if err != nil {
		return nil, 0, fmt.Errorf("record: %w", err)
	}
	capture.Attach(bs)
	feed(capture, events)
	t := capture.Trace(c.workload, nil, c.tool)
	t.Recorder = trace.RecorderEBPF
	return t, len(events), nil
}
