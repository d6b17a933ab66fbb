package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/prefetch"
	"github.com/dejavu-project/dejavu/replay"
	"github.com/dejavu-project/dejavu/trace"
)

// replayFlags choose the trace a mount prefetches and how.
type replayFlags struct {
	trace    string
	workload string
	policy   string
	workers  int
}

func (f *replayFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.trace, "trace", "auto", "trace to prefetch: auto (the one attached to the image), none, a FILE, or sha256:DIGEST of an attached trace")
	fl.StringVar(&f.workload, "workload", "", "with --trace auto: which workload's trace, when several are attached")
	fl.StringVar(&f.policy, "replay-policy", "dejavu", "dejavu, or fifo (overlaybd's own: recorded order, no joining, 16 workers, no priority)")
	fl.IntVar(&f.workers, "prefetch-workers", 8, "units fetched at once")
}

// prefetcher starts replaying a trace on an opened image; stop ends it.
type prefetcher struct {
	eng  *prefetch.Engine
	plan *replay.Plan
}

// load finds the trace to replay, or nil when there is none to use.
func (f *replayFlags) load(ctx context.Context, bs *backstore.Backstore, rf registryFlags) (*trace.Trace, error) {
	switch {
	case f.trace == "none" || f.trace == "":
		return nil, nil
	case f.trace == "auto":
		if bs.ResolvedLocally() {
			// Started here before: asking the registry for traces would
			// make a warm start wait on it; the cache holds what it needs.
			return nil, nil
		}
		ref := bs.Ref()
		ropts, err := rf.options()
		if err != nil {
			return nil, err
		}
		t, d, err := trace.Pull(ctx, ref, trace.WithWorkload(f.workload), trace.WithPullRefOptions(ropts...))
		if err != nil {
			slog.Info("no trace to prefetch", "reason", err)
			return nil, nil
		}
		slog.Info("prefetching with the attached trace", "digest", d, "workload", t.Workload)
		return t, nil
	case strings.HasPrefix(f.trace, "sha256:"):
		ropts, err := rf.options()
		if err != nil {
			return nil, err
		}
		t, _, err := trace.Pull(ctx, bs.Ref(), trace.WithDigest(f.trace), trace.WithPullRefOptions(ropts...))
		return t, err
	default:
		if _, err := os.Stat(f.trace); err != nil {
			return nil, fmt.Errorf("--trace %s: %w", f.trace, err)
		}
		return readTraceFile(f.trace)
	}
}

// start plans and starts the replay; slot is the observer registered when
// the image was opened.
func (f *replayFlags) start(ctx context.Context, bs *backstore.Backstore, slot *backstore.Slot, t *trace.Trace) (*prefetcher, error) {
	var layers []v1.Hash
	for _, l := range bs.Manifest().Layers {
		layers = append(layers, l.Digest)
	}
	opts := replay.Options{Policy: replay.Policy(f.policy)}
	engOpts := []prefetch.Option{prefetch.WithWorkers(f.workers)}
	switch opts.Policy {
	case replay.PolicyDejavu:
	case replay.PolicyFIFO:
		engOpts = []prefetch.Option{prefetch.WithWorkers(16), prefetch.WithPriority(false), prefetch.WithFollow(false)}
	default:
		return nil, fmt.Errorf("--replay-policy %q: want dejavu or fifo", f.policy)
	}
	plan, err := replay.New(t, layers, bs.Held, opts)
	if err != nil {
		return nil, err
	}
	if plan.Dropped > 0 {
		slog.Info("trace records of layers this image lacks were dropped", "records", plan.Dropped, "bytes", plan.DroppedBytes)
	}
	eng := prefetch.Start(ctx, plan, bs, engOpts...)
	slot.Set(eng)
	return &prefetcher{eng: eng, plan: plan}, nil
}
