package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/snapshotter"
)

func newSnapshotterCmd() *cobra.Command {
	var f lazyFlags
	var address, root string
	cmd := &cobra.Command{
		Use:   "snapshotter",
		Short: "Serve a containerd snapshotter that starts overlaybd images lazily, with prefetch",
		Long: `Snapshotter serves containerd's snapshots API on a unix socket, for containerd
to use as a proxy plugin. Overlaybd images are not unpacked: their layers are
kept remote, and a container's root file system is an overlay whose lower
directory is the image mounted lazily through dejavu (prefetching the trace
attached to the image), whose upper directory is the container's own.
Ordinary images are unpacked into directories and stacked with overlayfs.

Pull overlaybd images with "dejavu image pull" (which tells the snapshotter
the image reference, so that layer blobs are never downloaded), then run
containers with "ctr run --snapshotter dejavu". Labels on a container's
snapshot ("ctr run --snapshotter-label KEY=VALUE") choose per container:
  ` + snapshotter.LabelTrace + `=auto|none|sha256:DIGEST
  ` + snapshotter.LabelWorkload + `=NAME      (which attached trace, with auto)
  ` + snapshotter.LabelRecord + `=NAME        (record this start's reads into
                                          ROOT/traces/NAME.djv when the container's
                                          snapshot is removed)

Snapshots survive a restart: images that containers stand on are mounted
again at start, and what a snapshotter that died left behind is cleaned up.
Needs root. containerd's config.toml:

  [proxy_plugins.dejavu]
    type = "snapshot"
    address = "/run/dejavu/snapshotter.sock"`,
		Example: `  dejavu snapshotter --address /run/dejavu/snapshotter.sock --root /var/lib/dejavu/snapshotter
  dejavu snapshotter --metrics-addr 127.0.0.1:9100 --cache-limit 50GiB`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.cacheDir == "" {
				f.cacheDir = filepath.Join(root, "cache")
			}
			ctx := cmd.Context()
			opts, stop, err := f.mountOptions(ctx)
			if err != nil {
				return err
			}
			defer stop()
			sn, err := snapshotter.New(ctx, root, snapshotter.WithMountOptions(opts...), snapshotter.WithLogger(slog.Default()))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "serving the dejavu snapshotter on %s (root %s)\n", address, root)
			err = snapshotter.Serve(ctx, sn, address)
			slog.Info("snapshotter stopping: unmounting images")
			if cerr := sn.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&address, "address", "/run/dejavu/snapshotter.sock", "unix socket to serve containerd's snapshots API on")
	fl.StringVar(&root, "root", "/var/lib/dejavu/snapshotter", "where snapshots, image mounts and recorded traces live")
	f.registerFetch(cmd, "", "persistent cache of blob bytes (default ROOT/cache)",
		"serve Prometheus metrics (fetches, cache hits, prefetch outcomes of every image mount) at http://ADDR/metrics")
	f.registerPrefetch(cmd)
	return cmd
}

func newImagePullCmd() *cobra.Command {
	var (
		address, namespace, name, platform string
		insecure                           bool
		timeout                            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image into containerd for the dejavu snapshotter, without downloading overlaybd layers",
		Long: `Pull pulls REF into containerd and unpacks it with the dejavu snapshotter.
The layers of an overlaybd image are labelled with the image reference and
manifest digest, which the snapshotter needs to read them lazily: their blobs
are not downloaded, only the manifest and the config. Layers of ordinary
images are downloaded and unpacked as "ctr image pull" would.

(A plain "ctr image pull" downloads every layer blob first; Kubernetes' CRI
passes the image reference itself when snapshot annotations are on.)`,
		Example: `  dejavu image pull localhost:5000/app:latest
  dejavu image pull --address /run/containerd/containerd.sock --namespace k8s.io registry.example.com/app:v2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			start := time.Now()
			img, err := snapshotter.Pull(ctx, address, args[0], snapshotter.WithNamespace(namespace), snapshotter.WithSnapshotterName(name),
				snapshotter.WithPlainHTTP(insecure), snapshotter.WithPullPlatform(platform))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pulled %s (%s) in %s\n", img.Name, img.Target.Digest, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&address, "address", "/run/containerd/containerd.sock", "containerd's socket")
	fl.StringVarP(&namespace, "namespace", "n", "default", "containerd namespace")
	fl.StringVar(&name, "snapshotter", "dejavu", "the name of the dejavu snapshotter in containerd's config")
	fl.StringVar(&platform, "platform", "", "platform to pull, as os/arch (default: this machine's)")
	fl.BoolVar(&insecure, "insecure", false, "plain HTTP to every registry (always used for localhost)")
	fl.DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this")
	return cmd
}
