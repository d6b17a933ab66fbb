package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/trace"
)

func newTraceExportCmd() *cobra.Command {
	var rf registryFlags
	var out, format, image string
	cmd := &cobra.Command{
		Use:   "export FILE --format overlaybd --image REF -o OUT",
		Short: "Export a trace to overlaybd's own trace file format",
		Long: `Export writes the trace in the format of overlaybd's recordTracePath, for the
unmodified overlaybd: ranges in each layer's uncompressed file, layer 0 the
bottom. Mapping blob ranges to those needs the layers' indexes, read from the
image (--image, the image the trace was recorded on; only headers and indexes
are fetched).`,
		Example: `  dejavu trace export web.djv --format overlaybd --image localhost:5000/app:latest -o trace`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "overlaybd" {
				return fmt.Errorf("--format %q: only overlaybd is supported", format)
			}
			if out == "" || image == "" {
				return errors.New("-o OUT and --image REF are required")
			}
			t, err := trace.ReadFile(args[0])
			if err != nil {
				return err
			}
			ropts, err := rf.options()
			if err != nil {
				return err
			}
			cache, err := os.MkdirTemp("", "dejavu-export-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(cache)
			bs, err := backstore.Open(cmd.Context(), image, backstore.WithCacheDir(cache), backstore.WithRefOptions(ropts...))
			if err != nil {
				return err
			}
			defer bs.Close()
			if bs.Digest() != t.Image {
				return fmt.Errorf("the trace was recorded on %s, %s is %s", t.Image, image, bs.Digest())
			}
			var blobs []*overlaybd.Blob
			for _, l := range bs.Layers() {
				blobs = append(blobs, l.Blob)
			}
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			if err := trace.ExportOverlaybd(f, t, blobs); err != nil {
				f.Close()
				os.Remove(out)
				return err
			}
			return f.Close()
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write")
	cmd.Flags().StringVar(&format, "format", "overlaybd", "export format (overlaybd)")
	cmd.Flags().StringVar(&image, "image", "", "the image the trace was recorded on")
	return cmd
}
