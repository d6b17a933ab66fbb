package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/trace"
)

func newTraceExportCmd() *cobra.Command {
	var rf registryFlags
	var out, format, image string
	var force bool
	cmd := &cobra.Command{
		Use:   "export FILE --format overlaybd --image REF --out OUT",
		Short: "Export a trace to overlaybd's own trace file format",
		Long: `Export writes the trace in the format of overlaybd's recordTracePath, for the
unmodified overlaybd: ranges in each layer's uncompressed file, layer 0 the
bottom. Mapping blob ranges to those needs the layers' indexes, read from the
image (--image, the image the trace was recorded on; only headers and indexes
are fetched).

` + outputHelp("OUT"),
		Example: `  dejavu trace export web.djv --format overlaybd --image localhost:5000/app:latest --out trace`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "overlaybd" {
				return fmt.Errorf("--format %q: only overlaybd is supported", format)
			}
			if out == "" || image == "" {
				return errors.New("--out OUT and --image REF are required")
			}
			t, err := trace.ReadFile(args[0])
			if err != nil {
				return err
			}
			ropts, err := rf.options()
			if err != nil {
				return err
			}
			return forceHint(trace.ExportImage(cmd.Context(), t, image, out, force, backstore.WithRefOptions(ropts...)))
		},
	}
	rf.register(cmd.Flags())
	registerOut(cmd, &out, "file to write")
	registerForce(cmd.Flags(), &force)
	cmd.Flags().StringVar(&format, "format", "overlaybd", "export format (overlaybd)")
	cmd.Flags().StringVar(&image, "image", "", "the image the trace was recorded on")
	return cmd
}
