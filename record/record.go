package record

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/device"
	"github.com/dejavu-project/dejavu/ebpf"
	"github.com/dejavu-project/dejavu/launch/timed"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/trace"
)

// Record starts ref's program as often as WithRuns says, records what each
// start reads and returns the runs merged (see WithMinRuns). Needs root.
func Record(ctx context.Context, ref string, opts ...Option) (*trace.Trace, error) {
	c := newConfig(opts)
	if err := c.check(); err != nil {
		return nil, err
	}
	var traces []*trace.Trace
	for i := 1; i <= c.runs; i++ {
		t, timing, err := c.recordOne(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i, err)
		}
		if c.progress != nil {
			c.progress(Run{N: i, Timing: timing, Trace: t})
		}
		traces = append(traces, t)
	}
	return trace.Merge(traces, c.minRuns)
}

func (c *config) check() error {
	if _, err := ParseRecorder(string(c.recorder)); err != nil {
		return err
	}
	if err := trace.ValidWorkload(c.workload); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	if c.runs < 1 || c.minRuns < 1 || c.minRuns > c.runs {
		return fmt.Errorf("record: %d runs, min-runs %d: want 1 <= min-runs <= runs", c.runs, c.minRuns)
	}
	return nil
}

// recordOne records one start from an empty cache and a dropped page cache.
func (c *config) recordOne(ctx context.Context, ref string) (*trace.Trace, timed.Timing, error) {
	cache, err := os.MkdirTemp("", "dejavu-record-")
	if err != nil {
		return nil, timed.Timing{}, fmt.Errorf("record: %w", err)
	}
	defer os.RemoveAll(cache)
	if err := timed.DropPageCache(); err != nil {
		c.log.Warn("recording a start that may not be cold", "err", err)
	}
	opts := append([]lazymount.Option{lazymount.WithLogger(c.log)}, c.mountOpts...)
	opts = append(opts, lazymount.WithTrace(trace.SourceSpec{Kind: trace.SourceNone}),
		lazymount.WithBackstoreOptions(backstore.WithCacheDir(cache)))
	var bpf *ebpf.Recorder
	if c.recorder == EBPF {
		// Loaded before the start is timed; the loop device it watches is
		// set once it exists.
		if bpf, err = ebpf.Start(0); err != nil {
			return nil, timed.Timing{}, fmt.Errorf("record: %w", err)
		}
	}
	capture := NewCapture(time.Now())
	if bpf != nil {
		opts = append(opts, capture.attachOption(), lazymount.WithDeviceOptions(device.WithAttached(bpf.SetDevice)))
	} else {
		opts = append(opts, capture.MountOptions()...)
	}
	timing, err := timed.Start(ctx, ref, c.program, opts...)
	if bpf != nil {
		events, serr := bpf.Stop()
		err = errors.Join(err, serr)
		feed(capture, events)
	}
	if err != nil {
		return nil, timing, err
	}
	t := capture.Trace(c.workload, c.program.Args, c.tool)
	t.Recorder = string(c.recorder)
	return t, timing, nil
}

// feed turns block requests into trace records through the image's index.
func feed(c *Capture, events []ebpf.Event) {
	for _, e := range events {
		if !e.Write {
			c.DeviceRead(backstore.DeviceRead{Offset: e.Offset, Length: e.Length, Start: e.Time})
		}
	}
}
