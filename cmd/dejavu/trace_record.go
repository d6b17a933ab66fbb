package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/internal/safefile"
	"github.com/dejavu-project/dejavu/record"
	"github.com/dejavu-project/dejavu/trace"
)

func newTraceRecordCmd() *cobra.Command {
	var f lazyFlags
	var recorder, workload, out, devicePath string
	var duration time.Duration
	var runs, minRuns int
	var force bool
	cmd := &cobra.Command{
		Use:   "record REF --out FILE [-- CMD ARGS...]",
		Short: "Record what a workload reads while it starts",
		Long: `Record starts the workload --runs times as "dejavu run" does, each time from an
empty cache and with the page cache dropped, and records which byte ranges of
which layer blobs each start read, and when. The runs are merged: ranges read
in at least --min-runs runs are kept, the earliest first access wins.

Recorders: backstore (dejavu's own device reports every read) or ebpf (a
program on the block_rq_issue tracepoint watches the loop device). With
--device, the eBPF recorder watches a block device dejavu does not serve, such
as the real overlaybd's, for --duration, mapping its reads through REF's
indexes. Needs root.

--out FILE is checked before the first run and written through a temporary file
beside it and a rename. An existing regular file is replaced only with
--force; anything else at FILE (a device node, a symbolic link, a directory,
a FIFO) is never replaced.`,
		Example: `  dejavu trace record localhost:5000/web:latest --ready http://127.0.0.1:8080/ --workload web --out web.djv
  dejavu trace record localhost:5000/py:latest --runs 3 --min-runs 2 --out py.djv -- python3 -c "import numpy"
  dejavu trace record registry.example.com/app:v1 --device /dev/sdb --duration 60s --out app.djv`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireOut(out, "FILE"); err != nil {
				return err
			}
			rec, err := record.ParseRecorder(recorder)
			if err != nil {
				return fmt.Errorf("--recorder: %w", err)
			}
			if err := safefile.Check(out, safefile.WithReplace(force)); err != nil {
				return forceHint(err)
			}
			if devicePath != "" {
				return recordDevice(cmd, devicePath, args[0], f.registry, workload, duration, out, force)
			}
			probe, opts, stop, err := f.startOptions(cmd.Context())
			if err != nil {
				return err
			}
			defer stop()
			if workload == "" {
				workload = "default"
			}
			t, err := record.Record(cmd.Context(), args[0], record.WithRecorder(rec), record.WithRuns(runs), record.WithMinRuns(minRuns),
				record.WithWorkload(workload), record.WithCommand(args[1:]...), record.WithReady(probe), record.WithTimeout(f.timeout),
				record.WithOutput(cmd.OutOrStdout(), cmd.ErrOrStderr()), record.WithMountOptions(opts...), record.WithTool(version),
				record.WithLogger(slog.Default()), record.WithProgress(func(r record.Run) {
					fmt.Fprintf(cmd.ErrOrStderr(), "run %d: ready in %s, %d ranges, %s\n", r.N, r.Timing.Total.Round(time.Millisecond), len(r.Trace.Records), humanBytes(r.Trace.Bytes()))
				}))
			if err != nil {
				return err
			}
			if err := trace.WriteFile(out, t, trace.WithReplace(force)); err != nil {
				return forceHint(err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d ranges, %s, over %s\n", out, len(t.Records), humanBytes(t.Bytes()), t.Span().Round(time.Millisecond))
			return nil
		},
	}
	f.registerLocal(cmd)
	f.registerStart(cmd)
	fl := cmd.Flags()
	fl.StringVar(&recorder, "recorder", string(record.Backstore), "backstore or ebpf")
	fl.IntVar(&runs, "runs", 1, "warm-up starts to record")
	fl.IntVar(&minRuns, "min-runs", 1, "keep ranges read in at least this many runs")
	fl.StringVar(&workload, "workload", "", "workload name stored in the trace (default: default)")
	registerOut(cmd, &out, "trace file to write")
	registerForce(fl, &force)
	fl.StringVar(&devicePath, "device", "", "record a block device dejavu does not serve (with eBPF), e.g. overlaybd's; REF is then the image it holds")
	fl.DurationVar(&duration, "duration", 30*time.Second, "with --device: how long to record (SIGINT stops earlier)")
	return cmd
}

// recordDevice records the reads of a block device that dejavu does not
// serve.
func recordDevice(cmd *cobra.Command, path, ref string, rf registryFlags, workload string, duration time.Duration, out string, force bool) error {
	ropts, err := rf.options()
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "recording reads of %s for %s (interrupt to stop earlier)\n", path, duration)
	t, requests, err := record.Device(cmd.Context(), path, ref, duration, record.WithRefOptions(ropts...), record.WithWorkload(workload), record.WithTool(version))
	if err != nil {
		return err
	}
	if err := trace.WriteFile(out, t, trace.WithReplace(force)); err != nil {
		return forceHint(err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d block requests, %d ranges, %s\n", out, requests, len(t.Records), humanBytes(t.Bytes()))
	return nil
}
