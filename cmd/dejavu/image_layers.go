package main

import (
	"fmt"
	"log/slog"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/layerdiff"
)

func newImageLayersCmd() *cobra.Command {
	var rf registryFlags
	var cf configFlags
	var workDir string
	cmd := &cobra.Command{
		Use:   "layers DEST DIR...",
		Short: "Build an ordinary multi-layer OCI image from snapshots of a tree",
		Long: `Layers writes to DEST an ordinary OCI image (gzip tar layers, not overlaybd)
with one layer per DIR: the first the whole of the first tree, each next one
what changed since the tree before it (added and changed entries, whiteouts
for removed ones), as the steps of a Dockerfile build make an image. Take
the snapshots with "cp -a" between the steps: entries are compared by type,
mode, owner, size, time, link target and extended attributes, not content.
A hard link added to a file of an earlier tree is written as a copy.

It makes the images that "dejavu image convert" turns into overlaybd images
layer by layer, for tests and benchmarks. Run it as root to keep owners.`,
		Example: `  dejavu image layers oci:./layout:app ./steps/base ./steps/python ./steps/app --cmd python3
  dejavu image layers localhost:5000/app:v1 ./base ./app --env LANG=C.UTF-8`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dest, err := imageref.Parse(args[0])
			if err != nil {
				return err
			}
			if dest.Kind == imageref.KindFiles {
				return fmt.Errorf("DEST %s: write to a registry or an OCI layout", args[0])
			}
			config, err := cf.config()
			if err != nil {
				return err
			}
			plat := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
			if rf.platformSet() {
				p, err := v1.ParsePlatform(rf.platform)
				if err != nil {
					return fmt.Errorf("--platform: %w", err)
				}
				plat = *p
			}
			ropts, err := rf.options()
			if err != nil {
				return err
			}
			built, err := layerdiff.Image(cmd.Context(), args[1:], config, plat, layerdiff.WithWorkDir(workDir), layerdiff.WithLogger(slog.Default()))
			if err != nil {
				return err
			}
			defer built.Close()
			if err := imageref.WriteImage(cmd.Context(), dest, built.Image, ropts...); err != nil {
				return err
			}
			d, err := built.Image.Digest()
			if err != nil {
				return err
			}
			for i, st := range built.Layers {
				fmt.Fprintf(cmd.ErrOrStderr(), "layer %d (%s): %d entries, %d whiteouts, %s of files\n", i, args[1+i], st.Entries, st.Whiteouts, humanBytes(st.Bytes))
			}
			fmt.Fprintln(cmd.OutOrStdout(), d)
			return nil
		},
	}
	rf.register(cmd.Flags())
	cf.register(cmd)
	cmd.Flags().StringVar(&workDir, "work-dir", "", "where the layers are written while the image is built (default: the system's temporary directory)")
	return cmd
}
