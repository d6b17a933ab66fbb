package main

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
)

func newImageBuildCmd() *cobra.Command {
	var rf registryFlags
	var lf layerFlags
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "build DIR DEST",
		Short: "Build a directory tree into a one-layer overlaybd image",
		Long: `Build makes an ext4 file system of DIR (mke2fs -t ext4 -b 4096 -d DIR), stores
it as one sealed overlaybd layer (LSMT, ZFile-compressed, tar-wrapped, as the
overlaybd tools write it) and writes the image, with the overlaybd layer
annotations and an OCI config, to DEST: a registry reference or oci:DIR[:TAG].

Run it as root to keep the owners of DIR's files.`,
		Example: `  dejavu image build ./rootfs localhost:5000/app:latest --cmd /app/server
  dejavu image build ./rootfs oci:./layout:app --compression zstd --block-size 32KiB
  dejavu image build ./rootfs localhost:5000/app:big --size 64GiB --env LANG=C.UTF-8`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dest, err := imageref.Parse(args[1])
			if err != nil {
				return err
			}
			if dest.Kind == imageref.KindFiles {
				return fmt.Errorf("DEST %s: write to a registry or an OCI layout", args[1])
			}
			config, err := cf.config()
			if err != nil {
				return err
			}
			opts, err := lf.options()
			if err != nil {
				return err
			}
			opts = append(opts, overlaybd.WithConfig(config))
			if rf.platformSet() {
				p, err := v1.ParsePlatform(rf.platform)
				if err != nil {
					return fmt.Errorf("--platform: %w", err)
				}
				opts = append(opts, overlaybd.WithPlatform(*p))
			}
			built, err := overlaybd.Build(cmd.Context(), args[0], opts...)
			if err != nil {
				return err
			}
			defer built.Close()
			return writeBuilt(cmd, built, dest, rf)
		},
	}
	rf.register(cmd.Flags())
	lf.register(cmd)
	cf.register(cmd)
	return cmd
}
