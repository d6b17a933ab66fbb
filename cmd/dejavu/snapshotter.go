package main

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/snapshotter"
)

func newSnapshotterCmd() *cobra.Command {
	var f lazyFlags
	var address, root, configFile string
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

Under Kubernetes, CRI passes no pod annotations to snapshot labels: --config
FILE chooses by image repository instead (the first matching rule applies;
labels still win):

  [[images]]
  match = "registry.example.com/shop/*"
  workload = "web"

  [[images]]
  match = "registry.example.com/batch/*"
  trace = "none"

Snapshots survive a restart: images that containers stand on are mounted
again at start, and what a snapshotter that died left behind is cleaned up.
Needs root. containerd's config.toml:

  [proxy_plugins.dejavu]
    type = "snapshot"
    address = "/run/dejavu/snapshotter.sock"`,
		Example: `  dejavu snapshotter --address /run/dejavu/snapshotter.sock --root /var/lib/dejavu/snapshotter
  dejavu snapshotter --metrics-addr 127.0.0.1:9100 --cache-limit 50GiB
  dejavu snapshotter --config /etc/dejavu/snapshotter.toml`,
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
			sopts := []snapshotter.Option{snapshotter.WithMountOptions(opts...), snapshotter.WithLogger(slog.Default())}
			if configFile != "" {
				c, err := snapshotter.LoadConfig(configFile)
				if err != nil {
					return err
				}
				sopts = append(sopts, snapshotter.WithConfig(c))
			}
			sn, err := snapshotter.New(ctx, root, sopts...)
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
	fl.StringVar(&configFile, "config", "", "TOML file choosing the prefetch of containers by image repository, for Kubernetes pods (whose labels CRI does not pass on); see docs/containerd.md")
	f.registerFetch(cmd, "", "persistent cache of blob bytes (default ROOT/cache)",
		"serve Prometheus metrics (fetches, cache hits, prefetch outcomes of every image mount) at http://ADDR/metrics")
	f.registerPrefetch(cmd)
	return cmd
}
