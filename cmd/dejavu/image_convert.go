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
	var flatten bool
	var cacheDir string
	cmd := &cobra.Command{
		Use:   "convert SRC DEST",
		Short: "Convert an ordinary OCI or Docker image into an overlaybd image, layer by layer",
		Long: `Convert turns each layer of SRC (tar, gzip or zstd; Docker or OCI) into one
overlaybd layer and writes the image, with SRC's runtime config (entrypoint,
command, environment, working directory, user), to DEST.

The layers are applied in order to one ext4 file system (whiteouts, opaque
directories, hard links, owners, modes and extended attributes honoured),
and each overlaybd layer holds only the blocks its source layer changed; the
bottom one also holds the empty file system. The virtual device is 64 GiB
(sparse) unless --size says otherwise. Layer UUIDs derive from the chain IDs,
as overlaybd's own convertor makes them, and times and file system ids are
fixed: the same source layer on the same layers below always gives the same
blob, so images sharing base layers share their converted layers too, and
pushing one after the other uploads only what differs.

--cache-dir keeps converted layers and skips the layers found there.
--flatten makes one layer of the whole tree instead (the earlier form).
Each source layer is checked against the diff ID of SRC's config; nothing is
written to DEST unless every layer converts. A layered conversion needs no
privilege; run --flatten as root so that files keep their owners.`,
		Example: `  dejavu image convert localhost:5000/python:3.12 localhost:5000/python:3.12-obd
  dejavu image convert localhost:5000/app:v2 localhost:5000/app:v2-obd --cache-dir ~/.cache/dejavu-convert
  dejavu image convert oci:./layout:app oci:./layout:app-obd --compression zstd
  dejavu image convert oci:./layout:app oci:./layout:app-flat --flatten`,
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
			if flatten && cacheDir != "" {
				return fmt.Errorf("--cache-dir applies to layered conversion, not to --flatten")
			}
			opts = append(opts, overlaybd.WithFlatten(flatten), overlaybd.WithCacheDir(cacheDir))
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
			if !flatten {
				st := built.Stats
				fmt.Fprintf(cmd.ErrOrStderr(), "%d layers: %d converted, %d from the cache\n", st.Layers, st.Converted, st.Cached)
			}
			return writeBuilt(cmd, built, dest, rf)
		},
	}
	rf.register(cmd.Flags())
	lf.register(cmd)
	cmd.Flags().BoolVar(&flatten, "flatten", false, "make one layer of the whole tree instead of one per source layer")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", "keep converted layers here and reuse them (default: no cache)")
	return cmd
}
