package main

import (
	"errors"
	"fmt"
	"github.com/dejavu-project/dejavu/launch/timed"
	"log/slog"
	"os"
	"time"

	"github.com/dejavu-project/dejavu/ebpf"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/launch"
	"github.com/dejavu-project/dejavu/trace"
)

func newTraceRecordCmd() *cobra.Command {
	var rf registryFlags
	var bf backstoreFlags
	var recorder, ready, workload, out, devicePath string
	var duration time.Duration
	var runs, minRuns int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "record REF -o FILE [-- CMD ARGS...]",
		Short: "Record what a workload reads while it starts",
		Long: `Record starts the workload --runs times as "dejavu run" does, each time from an
empty cache and with the page cache dropped, and records which byte ranges of
which layer blobs each start read, and when. The runs are merged: ranges read
in at least --min-runs runs are kept, the earliest first access wins.

Recorders: backstore (dejavu's own device reports every read) or ebpf (a
program on the block_rq_issue tracepoint watches the loop device). With
--device, the eBPF recorder watches a block device dejavu does not serve, such
as the real overlaybd's, for --duration, mapping its reads through REF's
indexes. Needs root.`,
		Example: `  dejavu trace record localhost:5000/web:latest --ready http://127.0.0.1:8080/ --workload web -o web.djv
  dejavu trace record localhost:5000/py:latest --runs 3 --min-runs 2 -o py.djv -- python3 -c "import numpy"
  dejavu trace record registry.example.com/app:v1 --device /dev/sdb --duration 60s -o app.djv`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("-o FILE is required")
			}
			if recorder != trace.RecorderBackstore && recorder != trace.RecorderEBPF {
				return fmt.Errorf("--recorder %q: want backstore or ebpf", recorder)
			}
			if devicePath != "" {
				return recordDevice(cmd, devicePath, args[0], rf, workload, duration, out)
			}
			if runs < 1 || minRuns < 1 || minRuns > runs {
				return fmt.Errorf("--runs %d --min-runs %d: want 1 <= min-runs <= runs", runs, minRuns)
			}
			probe, err := launch.ParseProbe(ready)
			if err != nil {
				return err
			}
			if workload == "" {
				workload = "default"
			}
			var traces []*trace.Trace
			for i := 0; i < runs; i++ {
				cache, err := os.MkdirTemp("", "dejavu-record-")
				if err != nil {
					return err
				}
				runFlags := bf
				runFlags.cacheDir = cache
				if err := timed.DropPageCache(); err != nil {
					slog.Warn("dropping the page cache", "err", err)
				}
				rec := trace.NewRecorder()
				var probeBPF *ebpf.Recorder
				var opts []backstore.Option
				if recorder == trace.RecorderBackstore {
					opts = append(opts, backstore.WithObserver(rec))
				} else {
					// Loaded before the start is timed; the loop device it
					// watches is set once it exists.
					if probeBPF, err = ebpf.Start(0); err != nil {
						return err
					}
				}
				// The clock starts with the mount: its own reads are part of
				// the start.
				rec.Restart(time.Now())
				hooks := mountHooks{opened: func(bs *backstore.Backstore) { rec.Attach(bs) }}
				if probeBPF != nil {
					hooks.attached = probeBPF.SetDevice
				}
				st, err := timedStart(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], args[1:], rf, runFlags, probe, timeout, hooks, opts...)
				if probeBPF != nil {
					events, perr := probeBPF.Stop()
					if err == nil && perr != nil {
						err = perr
					}
					feed(rec, events)
				}
				os.RemoveAll(cache)
				if err != nil {
					return fmt.Errorf("run %d: %w", i+1, err)
				}
				t := rec.Trace(workload, args[1:], version)
				t.Recorder = recorder
				fmt.Fprintf(cmd.ErrOrStderr(), "run %d: ready in %s, %d ranges, %s\n", i+1, st.Total.Round(time.Millisecond), len(t.Records), humanBytes(t.Bytes()))
				traces = append(traces, t)
			}
			t, err := trace.Merge(traces, minRuns)
			if err != nil {
				return err
			}
			if err := trace.WriteFile(out, t); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d ranges, %s, over %s\n", out, len(t.Records), humanBytes(t.Bytes()), t.Span().Round(time.Millisecond))
			return nil
		},
	}
	rf.register(cmd.Flags())
	bf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&recorder, "recorder", trace.RecorderBackstore, "backstore or ebpf")
	fl.IntVar(&runs, "runs", 1, "warm-up starts to record")
	fl.IntVar(&minRuns, "min-runs", 1, "keep ranges read in at least this many runs")
	fl.StringVar(&ready, "ready", "exit", "readiness probe: exit, tcp:PORT, http:URL or cmd:COMMAND")
	fl.DurationVar(&timeout, "timeout", 5*time.Minute, "give up when not ready within this")
	fl.StringVar(&workload, "workload", "", "workload name stored in the trace (default: default)")
	fl.StringVarP(&out, "output", "o", "", "trace file to write")
	fl.StringVar(&devicePath, "device", "", "record a block device dejavu does not serve (with eBPF), e.g. overlaybd's; REF is then the image it holds")
	fl.DurationVar(&duration, "duration", 30*time.Second, "with --device: how long to record (SIGINT stops earlier)")
	return cmd
}

// feed turns block requests into trace records through the image's index.
func feed(rec *trace.Recorder, events []ebpf.Event) {
	for _, e := range events {
		if !e.Write {
			rec.DeviceRead(backstore.DeviceRead{Offset: e.Offset, Length: e.Length, Start: e.Time})
		}
	}
}

// recordDevice records the reads of a block device that dejavu does not
// serve, mapping them through the image's indexes (only headers and indexes
// of the image are fetched).
func recordDevice(cmd *cobra.Command, path, ref string, rf registryFlags, workload string, duration time.Duration, out string) error {
	devt, err := ebpf.DevT(path)
	if err != nil {
		return err
	}
	ropts, err := rf.options()
	if err != nil {
		return err
	}
	cache, err := os.MkdirTemp("", "dejavu-record-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)
	bs, err := backstore.Open(cmd.Context(), ref, backstore.WithCacheDir(cache), backstore.WithRefOptions(ropts...))
	if err != nil {
		return err
	}
	defer bs.Close()
	p, err := ebpf.Start(devt)
	if err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(cmd.ErrOrStderr(), "recording reads of %s for %s (interrupt to stop earlier)\n", path, duration)
	select {
	case <-time.After(duration):
	case <-cmd.Context().Done():
	}
	events, err := p.Stop()
	if err != nil {
		return err
	}
	rec := trace.NewRecorder()
	rec.Restart(start)
	rec.Attach(bs)
	feed(rec, events)
	t := rec.Trace(workload, nil, version)
	t.Recorder = trace.RecorderEBPF
	if err := trace.WriteFile(out, t); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d block requests, %d ranges, %s\n", out, len(events), len(t.Records), humanBytes(t.Bytes()))
	return nil
}
