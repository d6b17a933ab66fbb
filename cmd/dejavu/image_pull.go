package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/snapshotter"
)

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
