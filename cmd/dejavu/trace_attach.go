package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/trace"
)

func newTraceAttachCmd() *cobra.Command {
	var rf registryFlags
	var force bool
	cmd := &cobra.Command{
		Use:   "attach REF FILE",
		Short: "Attach a trace to an image as an OCI referrer artifact",
		Long: `Attach pushes the trace as an OCI artifact (artifactType
application/vnd.dejavu.trace.v1) whose subject is the image at REF, through
the referrers API or, on registries without it, the fallback tag
sha256-<hex>. The image and its digest are unchanged. It prints the
artifact's digest, which a deployment can pin.

A trace recorded on another image is refused, naming the first layer that
differs; --force keeps the records of the layers the image has.`,
		Example: `  dejavu trace attach localhost:5000/app:latest web.djv`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, ropts, err := traceRef(args[0], rf)
			if err != nil {
				return err
			}
			t, err := trace.ReadFile(args[1])
			if err != nil {
				return err
			}
			d, err := trace.Attach(cmd.Context(), ref, t, trace.WithForce(force), trace.WithRefOptions(ropts...))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), d)
			return nil
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().BoolVar(&force, "force", false, "attach to an image whose layers only partly match, keeping the matching ones")
	return cmd
}
