package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/device"
	"github.com/dejavu-project/dejavu/internal/metrics"
	"github.com/dejavu-project/dejavu/lazymount"
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

// mountHooks let callers see the image once it is open and the loop device
// once it is attached, before the file system is mounted.
type mountHooks struct {
	opened   func(*backstore.Backstore)
	attached func(devt uint32) error
	replay   *replayFlags // nil: no prefetch
}

// mountOptions turns the flags and hooks into lazymount options; stop ends
// the metrics server when --metrics-addr started one.
func (f *backstoreFlags) mountOptions(rf registryFlags, hooks mountHooks, extra ...backstore.Option) (opts []lazymount.Option, stop func(), err error) {
	limit, err := parseSize(f.cacheLimit)
	if err != nil {
		return nil, nil, fmt.Errorf("--cache-limit: %w", err)
	}
	ropts, err := rf.options()
	if err != nil {
		return nil, nil, err
	}
	opts = []lazymount.Option{
		lazymount.WithStateDir(f.stateDir),
		lazymount.WithRefOptions(ropts...),
		lazymount.WithBackstoreOptions(backstore.WithCacheDir(f.cacheDir), backstore.WithCacheLimit(limit), backstore.WithRetry(f.attempts, f.idle)),
		lazymount.WithBackstoreOptions(extra...),
		lazymount.WithTrace(lazymount.TraceNone),
	}
	if hooks.replay != nil {
		ro, err := hooks.replay.options()
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, ro...)
	}
	if hooks.opened != nil {
		opts = append(opts, lazymount.WithOpened(hooks.opened))
	}
	if hooks.attached != nil {
		opts = append(opts, lazymount.WithDeviceOptions(device.WithAttached(hooks.attached)))
	}
	mctx, stopMetrics := context.WithCancel(context.Background())
	if f.metrics != "" {
		reg := metrics.New()
		addr, err := serveMetrics(mctx, f.metrics, reg)
		if err != nil {
			stopMetrics()
			return nil, nil, fmt.Errorf("--metrics-addr: %w", err)
		}
		slog.Info("serving metrics", "url", "http://"+addr+"/metrics")
		opts = append(opts, lazymount.WithMetrics(lazymount.NewMetrics(reg)))
	}
	return opts, stopMetrics, nil
}

// logPrefetch reports a prefetch's outcome.
func logPrefetch(r prefetch.Report) {
	slog.Info("prefetch", "units", r.Units, "bytes", r.Bytes, "hit", r.Hit, "partial", r.Partial, "miss", r.Miss, "waste", r.Waste, "skipped", r.Skipped, "failed", r.Failed)
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
			opts, stop, err := bf.mountOptions(rf, mountHooks{replay: &pf})
			if err != nil {
				return err
			}
			defer stop()
			start := time.Now()
			m, err := lazymount.Start(cmd.Context(), args[0], args[1], opts...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "mounted %s (%s) at %s in %s\n", args[0], m.Backstore().Digest(), args[1], time.Since(start).Round(time.Millisecond))
			<-cmd.Context().Done()
			slog.Info("unmounting", "dir", args[1])
			err = m.Close()
			if m.Prefetching() {
				logPrefetch(m.Report())
			}
			return err
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
