package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/replay"
)

// replayFlags choose the trace a mount prefetches and how.
type replayFlags struct {
	trace    string
	workload string
	policy   string
	workers  int
	batch    int64
	wait     time.Duration
}

func (f *replayFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.trace, "trace", "auto", "trace to prefetch: auto (the one attached to the image), none, a FILE, or sha256:DIGEST of an attached trace")
	fl.StringVar(&f.workload, "workload", "", "with --trace auto: which workload's trace, when several are attached")
	fl.StringVar(&f.policy, "replay-policy", "dejavu", "dejavu, or fifo (overlaybd's own: recorded order, no joining, 16 workers, no priority)")
	fl.IntVar(&f.workers, "prefetch-workers", lazymount.DefaultPrefetchWorkers, "requests the prefetcher keeps in flight")
	fl.DurationVar(&f.wait, "trace-wait", lazymount.DefaultTraceWait, "start without prefetch when finding the trace takes longer than this after the image opened")
	fl.Int64Var(&f.batch, "prefetch-batch", lazymount.DefaultPrefetchBatch, "bytes of trace ranges one prefetch request asks for (several ranges in one request where the registry allows)")
}

// options turns the flags into lazymount options.
func (f *replayFlags) options() ([]lazymount.Option, error) {
	switch replay.Policy(f.policy) {
	case replay.PolicyDejavu, replay.PolicyFIFO:
	default:
		return nil, fmt.Errorf("--replay-policy %q: want dejavu or fifo", f.policy)
	}
	if f.trace != lazymount.TraceAuto && f.trace != lazymount.TraceNone && f.trace != "" && !strings.HasPrefix(f.trace, "sha256:") {
		if _, err := os.Stat(f.trace); err != nil {
			return nil, fmt.Errorf("--trace %s: %w", f.trace, err)
		}
	}
	return []lazymount.Option{lazymount.WithTrace(f.trace), lazymount.WithWorkload(f.workload), lazymount.WithPolicy(replay.Policy(f.policy)),
		lazymount.WithPrefetchWorkers(f.workers), lazymount.WithPrefetchBatch(f.batch), lazymount.WithTraceWait(f.wait)}, nil
}
