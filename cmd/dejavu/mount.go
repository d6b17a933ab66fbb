package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore/device"
	"github.com/dejavu-project/dejavu/lazymount"
	"github.com/dejavu-project/dejavu/prefetch"
)

// mountFlags registers the flags of a command that mounts an image and
// prefetches its trace (mount, run).
func mountFlags(cmd *cobra.Command) *lazyFlags {
	f := &lazyFlags{}
	f.registerLocal(cmd)
	f.registerPrefetch(cmd)
	f.registerTrace(cmd)
	return f
}

// logPrefetch reports a prefetch's outcome.
func logPrefetch(r prefetch.Report) {
	slog.Info("prefetch", "units", r.Units, "bytes", r.Bytes, "hit", r.Hit, "partial", r.Partial, "miss", r.Miss, "waste", r.Waste, "skipped", r.Skipped, "failed", r.Failed)
}

func newMountCmd() *cobra.Command {
	var f *lazyFlags
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
			opts, stop, err := f.mountOptions(cmd.Context())
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
	f = mountFlags(cmd)
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
