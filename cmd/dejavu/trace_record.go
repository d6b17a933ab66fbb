package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/launch"
	"github.com/dejavu-project/dejavu/trace"
)

func newTraceRecordCmd() *cobra.Command {
	var rf registryFlags
	var bf backstoreFlags
	var recorder, ready, workload, out string
	var runs, minRuns int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "record REF -o FILE [-- CMD ARGS...]",
		Short: "Record what a workload reads while it starts",
		Long: `Record starts the workload --runs times as "dejavu run" does, each time from an
empty cache and with the page cache dropped, and records which byte ranges of
which layer blobs each start read, and when. The runs are merged: ranges read
in at least --min-runs runs are kept, the earliest first access wins.

Recorders: backstore (dejavu's own device reports every read). Needs root.`,
		Example: `  dejavu trace record localhost:5000/web:latest --ready http://127.0.0.1:8080/ --workload web -o web.djv
  dejavu trace record localhost:5000/py:latest --runs 3 --min-runs 2 -o py.djv -- python3 -c "import numpy"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("-o FILE is required")
			}
			switch recorder {
			case trace.RecorderBackstore:
			case trace.RecorderEBPF:
				return errors.New("--recorder ebpf: the eBPF recorder is not available yet; use --recorder backstore")
			default:
				return fmt.Errorf("--recorder %q: want backstore or ebpf", recorder)
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
				dropPageCache()
				rec := trace.NewRecorder()
				st, err := timedStart(cmd, args[0], args[1:], rf, runFlags, probe, timeout, func(start time.Time, bs *backstore.Backstore) {
					rec.Restart(start)
					rec.Attach(bs)
				}, backstore.WithObserver(rec))
				os.RemoveAll(cache)
				if err != nil {
					return fmt.Errorf("run %d: %w", i+1, err)
				}
				t := rec.Trace(workload, args[1:], version)
				fmt.Fprintf(cmd.ErrOrStderr(), "run %d: ready in %s, %d ranges, %s\n", i+1, st.total.Round(time.Millisecond), len(t.Records), humanBytes(t.Bytes()))
				traces = append(traces, t)
			}
			t, err := trace.Merge(traces, minRuns)
			if err != nil {
				return err
			}
			if err := writeTraceFile(out, t); err != nil {
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
	return cmd
}

// dropPageCache empties the kernel's page cache so a start is cold; without
// the right to, the start is recorded anyway, with a warning.
func dropPageCache() {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
		slog.Warn("cannot drop the page cache; this start may not be cold", "err", err)
	}
}
