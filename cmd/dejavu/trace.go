package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore/imageref"
)

func newTraceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trace",
		Short: "Record, merge, inspect and attach start-up traces",
		Long: `A trace says which byte ranges of which layer blobs a program read while it
started, and when. Record one in staging, attach it to the image in CI (the
image digest does not change), and cold starts prefetch exactly that.`,
	}
	cmd.AddCommand(newTraceRecordCmd(), newTraceMergeCmd(), newTraceInspectCmd(), newTraceAttachCmd(),
		newTraceLsCmd(), newTracePullCmd(), newTraceExportCmd())
	return cmd
}

// traceRef parses a registry reference for the trace commands.
func traceRef(s string, rf registryFlags) (imageref.Ref, []imageref.Option, error) {
	ref, err := imageref.Parse(s)
	if err != nil {
		return ref, nil, err
	}
	if ref.Kind != imageref.KindRegistry {
		return ref, nil, fmt.Errorf("%s: traces are attached to images in a registry", s)
	}
	opts, err := rf.options()
	return ref, opts, err
}
