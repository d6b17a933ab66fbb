package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
)

func newImageConvertCmd() *cobra.Command {
	var rf registryFlags
	var lf layerFlags
	cmd := &cobra.Command{
		Use:   "convert SRC DEST",
		Short: "Convert an ordinary OCI or Docker image into a one-layer overlaybd image",
		Long: `Convert applies the layers of SRC in order onto an empty tree (whiteouts and
opaque directories honoured, owners and modes kept), builds the tree into one
overlaybd layer as "image build" does, and writes the image, with SRC's runtime
config (entrypoint, command, environment, working directory, user), to DEST.

The result has one flattened layer: the layers of SRC are not kept apart.
Run it as root so that files keep their owners.`,
		Example: `  dejavu image convert localhost:5000/python:3.12 localhost:5000/python:3.12-obd
  dejavu image convert oci:./layout:app oci:./layout:app-obd --compression zstd`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := imageref.Parse(args[0])
			if err != nil {
				return err
			}
			dest, err := imageref.Parse(args[1])
			if err != nil {
				return err
			}
			if src.Kind == imageref.KindFiles || dest.Kind == imageref.KindFiles {
				return fmt.Errorf("convert reads and writes registry images or OCI layouts, not file: layers")
			}
			opts, err := lf.options()
			if err != nil {
				return err
			}
			ropts, err := rf.options()
			if err != nil {
				return err
			}
			img, err := imageref.Image(cmd.Context(), src, ropts...)
			if err != nil {
				return err
			}
			built, err := overlaybd.Convert(cmd.Context(), img, opts...)
			if err != nil {
				return err
			}
			defer built.Close()
			return writeBuilt(cmd, built, dest, rf)
		},
	}
	rf.register(cmd.Flags())
	lf.register(cmd)
	return cmd
}
