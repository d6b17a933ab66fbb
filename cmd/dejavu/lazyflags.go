package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/device"
	"github.com/dejavu-project/dejavu/launch"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/replay"
	"github.com/dejavu-project/dejavu/trace"
)

// lazyFlags are the flags of the commands that mount images lazily (mount,
// run, trace record, snapshotter): each registers the groups it has, and
// mountOptions turns whatever was registered into lazymount options.
type lazyFlags struct {
	registry registryFlags
	// fetch and cache
	cacheDir, cacheLimit, metricsAddr string
	idle                              time.Duration
	attempts                          int
	stateDir                          string // "": not registered
	// prefetch
	hasPrefetch, hasTrace   bool
	workers                 int
	batch                   int64
	wait                    time.Duration
	trace, workload, policy string
	// the start (run, trace record)
	ready   string
	timeout time.Duration
}

// registerFetch adds the registry, cache, retry and metrics flags.
func (f *lazyFlags) registerFetch(cmd *cobra.Command, cacheDefault, cacheHelp, metricsHelp string) {
	fl := cmd.Flags()
	f.registry.register(fl)
	fl.StringVar(&f.cacheDir, "cache", cacheDefault, cacheHelp)
	fl.StringVar(&f.cacheLimit, "cache-limit", "0", "bound on the cache size (e.g. 20GiB; 0: no bound; at least 4 MiB plus --prefetch-workers × --prefetch-batch)")
	fl.DurationVar(&f.idle, "fetch-idle-timeout", 10*time.Second, "abandon and retry a blob fetch that receives nothing for this long")
	fl.IntVar(&f.attempts, "fetch-attempts", 6, "tries for each blob fetch")
	fl.StringVar(&f.metricsAddr, "metrics-addr", "", metricsHelp)
}

// registerLocal adds the fetch flags of a command that mounts in its own
// process (mount, run, trace record), with --state-dir.
func (f *lazyFlags) registerLocal(cmd *cobra.Command) {
	f.registerFetch(cmd, backstore.DefaultCacheDir(), "persistent cache of blob bytes",
		"serve Prometheus metrics (fetches by cause, bytes, latencies, cache hits, prefetch outcomes) at http://ADDR/metrics")
	cmd.Flags().StringVar(&f.stateDir, "state-dir", device.DefaultStateDir, "where mount state is kept, for umount and crash cleanup")
}

// registerPrefetch adds the prefetcher's tuning.
func (f *lazyFlags) registerPrefetch(cmd *cobra.Command) {
	f.hasPrefetch = true
	fl := cmd.Flags()
	fl.IntVar(&f.workers, "prefetch-workers", lazymount.DefaultPrefetchWorkers, "requests the prefetcher keeps in flight")
	fl.Int64Var(&f.batch, "prefetch-batch", lazymount.DefaultPrefetchBatch, "bytes of trace ranges one prefetch request asks for (several ranges in one request where the registry allows)")
	fl.DurationVar(&f.wait, "trace-wait", lazymount.DefaultTraceWait, "start without prefetch when finding the trace takes longer than this after the image opened")
}

// registerTrace adds the choice of the trace and of the replay policy.
func (f *lazyFlags) registerTrace(cmd *cobra.Command) {
	f.hasTrace = true
	fl := cmd.Flags()
	fl.StringVar(&f.trace, "trace", "auto", "trace to prefetch: auto (the one attached to the image), none, a FILE, or sha256:DIGEST of an attached trace")
	fl.StringVar(&f.workload, "workload", "", "with --trace auto: which workload's trace, when several are attached")
	fl.StringVar(&f.policy, "replay-policy", "dejavu", "dejavu, or fifo (overlaybd's own: recorded order, no joining, 16 workers, no priority)")
}

// registerStart adds when a started program counts as ready.
func (f *lazyFlags) registerStart(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.ready, "ready", "exit", "readiness probe: exit, tcp:PORT, http:URL or cmd:COMMAND")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Minute, "give up when not ready within this")
}

// startOptions are mountOptions and the readiness probe, for a command
// that starts the image's program.
func (f *lazyFlags) startOptions(ctx context.Context) (launch.Probe, []lazymount.Option, func(), error) {
	if f.timeout <= 0 {
		return launch.Probe{}, nil, nil, fmt.Errorf("--timeout %s: want more than 0", f.timeout)
	}
	probe, err := launch.ParseProbe(f.ready)
	if err != nil {
		return launch.Probe{}, nil, nil, err
	}
	opts, stop, err := f.mountOptions(ctx)
	return probe, opts, stop, err
}

// mountOptions turns the flags into lazymount options, and starts the
// metrics server when --metrics-addr asks for one; stop ends it.
func (f *lazyFlags) mountOptions(ctx context.Context) (opts []lazymount.Option, stop func(), err error) {
	if err := f.check(); err != nil {
		return nil, nil, err
	}
	limit, err := parseSize(f.cacheLimit)
	if err != nil {
		return nil, nil, fmt.Errorf("--cache-limit: %w", err)
	}
	if min := f.minCacheLimit(); limit != 0 && limit < min {
		return nil, nil, fmt.Errorf("--cache-limit %s: want 0 (no bound) or at least %s (%d bytes): the cache must hold the fetches in flight, the demand reads' and the prefetcher's", f.cacheLimit, humanBytes(min), min)
	}
	ropts, err := f.registry.options()
	if err != nil {
		return nil, nil, err
	}
	opts = []lazymount.Option{lazymount.WithLogger(slog.Default()), lazymount.WithRefOptions(ropts...),
		lazymount.WithBackstoreOptions(backstore.WithCacheDir(f.cacheDir), backstore.WithCacheLimit(limit), backstore.WithRetry(f.attempts, f.idle))}
	if f.stateDir != "" {
		opts = append(opts, lazymount.WithStateDir(f.stateDir))
	}
	if f.hasPrefetch {
		opts = append(opts, lazymount.WithPrefetchWorkers(f.workers), lazymount.WithPrefetchBatch(f.batch), lazymount.WithTraceWait(f.wait))
	}
	if f.hasTrace {
		to, err := f.traceOptions()
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, to...)
	}
	// The metrics outlive an interrupt until the command returns, so that
	// the mount's teardown and final prefetch outcome are still counted.
	mctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	if f.metricsAddr != "" {
		mo, err := withMetrics(mctx, f.metricsAddr)
		if err != nil {
			stop()
			return nil, nil, err
		}
		opts = append(opts, mo)
	}
	return opts, stop, nil
}

func (f *lazyFlags) traceOptions() ([]lazymount.Option, error) {
	policy, err := replay.ParsePolicy(f.policy)
	if err != nil {
		return nil, fmt.Errorf("--replay-policy: %w", err)
	}
	src := trace.SourceSpec{Kind: trace.SourceNone} // --trace "": no prefetch, as before
	if f.trace != "" {
		if src, err = trace.ParseSource(f.trace); err != nil {
			return nil, fmt.Errorf("--trace: %w", err)
		}
		if src.Kind == trace.SourceFile {
			if _, err := os.Stat(src.Path); err != nil {
				return nil, fmt.Errorf("--trace %s: %w", f.trace, err)
			}
		}
	}
	return []lazymount.Option{lazymount.WithTrace(src), lazymount.WithWorkload(f.workload), lazymount.WithPolicy(policy)}, nil
}

// check refuses flag values that would fail late or obscurely, naming the
// flag, and says plainly when the command cannot work without root.
// minCacheLimit is the smallest --cache-limit that works: what backstore
// needs for demand reads, and the prefetcher's requests in flight on top.
func (f *lazyFlags) minCacheLimit() int64 {
	min := backstore.MinCacheLimit(backstore.DefaultFetchUnit)
	if f.hasPrefetch {
		min += int64(f.workers) * max(f.batch, backstore.DefaultFetchUnit)
	}
	return min
}

func (f *lazyFlags) check() error {
	switch {
	case f.attempts < 1:
		return fmt.Errorf("--fetch-attempts %d: want at least 1", f.attempts)
	case f.idle <= 0:
		return fmt.Errorf("--fetch-idle-timeout %s: want more than 0", f.idle)
	case f.hasPrefetch && f.workers < 1:
		return fmt.Errorf("--prefetch-workers %d: want at least 1", f.workers)
	case f.hasPrefetch && f.batch < 0:
		return fmt.Errorf("--prefetch-batch %d: want 0 (a range a request) or more", f.batch)
	case f.hasPrefetch && f.wait < 0:
		return fmt.Errorf("--trace-wait %s: want 0 or more", f.wait)
	case os.Geteuid() != 0:
		return errors.New("this command needs root: it serves the image through FUSE, a loop device and a mount")
	}
	return nil
}
