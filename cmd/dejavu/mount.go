package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/device"
	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/internal/metrics"
	"github.com/dejavu-project/dejavu/prefetch"
)

// backstoreFlags are the flags of commands that open an image lazily.
type backstoreFlags struct {
	cacheDir   string
	cacheLimit string
	stateDir   string
	idle       time.Duration
	attempts   int
	metrics    string // address to serve Prometheus metrics on
}

func (f *backstoreFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.cacheDir, "cache", backstore.DefaultCacheDir(), "persistent cache of blob bytes")
	fl.StringVar(&f.cacheLimit, "cache-limit", "0", "bound on the cache size (e.g. 20GiB; 0: no bound)")
	fl.StringVar(&f.stateDir, "state-dir", device.DefaultStateDir, "where mount state is kept, for umount and crash cleanup")
	fl.DurationVar(&f.idle, "fetch-idle-timeout", 10*time.Second, "abandon and retry a blob fetch that receives nothing for this long")
	fl.IntVar(&f.attempts, "fetch-attempts", 6, "tries for each blob fetch")
	fl.StringVar(&f.metrics, "metrics-addr", "", "serve Prometheus metrics (fetches by cause, bytes, latencies, cache hits, prefetch outcomes) at http://ADDR/metrics")
}

func (f *backstoreFlags) open(ctx context.Context, ref string, rf registryFlags, extra ...backstore.Option) (*backstore.Backstore, error) {
	limit, err := parseSize(f.cacheLimit)
	if err != nil {
		return nil, fmt.Errorf("--cache-limit: %w", err)
	}
	ropts, err := rf.options()
	if err != nil {
		return nil, err
	}
	opts := append([]backstore.Option{backstore.WithCacheDir(f.cacheDir), backstore.WithCacheLimit(limit),
		backstore.WithRefOptions(ropts...), backstore.WithRetry(f.attempts, f.idle)}, extra...)
	return backstore.Open(ctx, ref, opts...)
}

// mountHooks let callers see the image once it is open and the loop device
// once it is attached, before the file system is mounted.
type mountHooks struct {
	opened   func(*backstore.Backstore)
	attached func(devt uint32) error
	replay   *replayFlags // nil: no prefetch
	// report, when set, receives the prefetch outcomes at teardown.
	report *prefetch.Report
	// reads, when set, counts the bytes the program read from the device.
	reads *atomic.Int64
}

// readCounter counts device bytes read.
type readCounter struct{ n *atomic.Int64 }

func (r readCounter) DeviceRead(ev backstore.DeviceRead) { r.n.Add(ev.Length) }
func (r readCounter) BlobFetch(backstore.BlobFetch)      {}

// mountImage opens ref lazily and mounts its file system read-only at dir.
// The returned function tears everything down.
func (f *backstoreFlags) mountImage(ctx context.Context, ref, dir string, rf registryFlags, hooks mountHooks, extra ...backstore.Option) (*backstore.Backstore, *device.Device, func() error, error) {
	// Whatever a crashed earlier mount left behind goes first.
	if n, err := device.Cleanup(ctx, device.WithStateDir(f.stateDir)); err != nil {
		slog.Warn("cleaning up after earlier mounts", "err", err)
	} else if n > 0 {
		slog.Info("cleaned up mounts left by processes that died", "count", n)
	}
	if hooks.reads != nil {
		extra = append(extra, backstore.WithObserver(readCounter{hooks.reads}))
	}
	var engine atomic.Pointer[prefetch.Engine]
	mctx, stopMetrics := context.WithCancel(context.Background())
	if f.metrics != "" {
		reg := metrics.New()
		prefetchMetrics(reg, &engine)
		addr, err := serveMetrics(mctx, f.metrics, reg)
		if err != nil {
			stopMetrics()
			return nil, nil, nil, fmt.Errorf("--metrics-addr: %w", err)
		}
		slog.Info("serving metrics", "url", "http://"+addr+"/metrics")
		extra = append(extra, backstore.WithObserver(metricsObserver{reg}))
	}
	var early *earlyReplay
	if hooks.replay != nil && hooks.replay.trace != "none" {
		r, err := imageref.Parse(ref)
		if err != nil {
			stopMetrics()
			return nil, nil, nil, err
		}
		early = newEarlyReplay(ctx, hooks.replay, r, rf)
		extra = append(extra, early.options()...)
	}
	start := time.Now()
	bs, err := f.open(ctx, ref, rf, extra...)
	if early != nil {
		early.opened(err == nil)
	}
	if err != nil {
		stopMetrics()
		return nil, nil, nil, err
	}
	slog.Debug("image opened", "after", time.Since(start))
	if hooks.opened != nil {
		hooks.opened(bs)
	}
	var pf *prefetcher
	if early != nil {
		if pf, err = early.wait(ctx); err != nil {
			stopMetrics()
			bs.Close()
			return nil, nil, nil, err
		}
		if pf != nil {
			engine.Store(pf.eng)
		}
	}
	dopts := []device.Option{device.WithStateDir(f.stateDir)}
	if hooks.attached != nil {
		dopts = append(dopts, device.WithAttached(hooks.attached))
	}
	dev, err := device.Mount(ctx, bs, dir, dopts...)
	if err != nil {
		if pf != nil {
			pf.eng.Stop()
		}
		stopMetrics()
		bs.Close()
		return nil, nil, nil, err
	}
	slog.Debug("mounted", "after", time.Since(start))
	return bs, dev, func() error {
		if pf != nil {
			pf.eng.Stop()
			r := pf.eng.Report()
			if hooks.report != nil {
				*hooks.report = r
			}
			slog.Info("prefetch", "units", r.Units, "bytes", r.Bytes, "hit", r.Hit, "partial", r.Partial, "miss", r.Miss, "waste", r.Waste, "skipped", r.Skipped, "failed", r.Failed)
		}
		stopMetrics()
		err := dev.Close()
		if cerr := bs.Close(); err == nil {
			err = cerr
		}
		return err
	}, nil
}

func newMountCmd() *cobra.Command {
	var rf registryFlags
	var bf backstoreFlags
	var pf replayFlags
	cmd := &cobra.Command{
		Use:   "mount REF DIR",
		Short: "Mount an overlaybd image read-only, fetching its bytes lazily",
		Long: `Mount opens REF, serves its merged virtual device through FUSE, attaches it to
a read-only loop device and mounts the file system on it read-only at DIR.
Bytes are fetched from the registry on first use and kept in the cache.

It stays in the foreground until interrupted (SIGINT, SIGTERM) or until
"dejavu umount DIR" is run, then tears down in order: unmount, detach the
loop device, stop FUSE. A mount left by a process that died is cleaned up by
the next mount or umount. Needs root.`,
		Example: `  dejavu mount localhost:5000/app:latest /mnt/app
  dejavu mount localhost:5000/app@sha256:... /mnt/app --cache /var/cache/dejavu --cache-limit 20GiB`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			bs, _, teardown, err := bf.mountImage(cmd.Context(), args[0], args[1], rf, mountHooks{replay: &pf})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "mounted %s (%s) at %s in %s\n", args[0], bs.Digest(), args[1], time.Since(start).Round(time.Millisecond))
			<-cmd.Context().Done()
			slog.Info("unmounting", "dir", args[1])
			return teardown()
		},
	}
	rf.register(cmd.Flags())
	bf.register(cmd)
	pf.register(cmd)
	return cmd
}

func newUmountCmd() *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "umount DIR",
		Short: "Unmount an image mounted with dejavu mount",
		Long: `Umount asks the dejavu process that mounted DIR to tear its mount down, or,
when that process is gone, tears it down itself: unmount, detach the loop
device, stop FUSE.`,
		Example: `  dejavu umount /mnt/app`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The owner gets a while to tear down cleanly; after that the
			// error says so and a later umount or mount finishes the job.
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			if err := device.Unmount(ctx, args[0], device.WithStateDir(stateDir)); err != nil {
				return err
			}
			if _, err := os.Stat(args[0]); err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "unmounted %s\n", args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", device.DefaultStateDir, "where mount state is kept")
	return cmd
}
