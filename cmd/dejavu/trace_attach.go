package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/trace"
)

func newTraceAttachCmd() *cobra.Command {
	var rf registryFlags
	var force bool
	var from, workload string
	cmd := &cobra.Command{
		Use:   "attach REF FILE | attach REF --from OLDREF",
		Short: "Attach a trace to an image as an OCI referrer artifact",
		Long: `Attach pushes the trace as an OCI artifact (artifactType
application/vnd.dejavu.trace.v1) whose subject is the image at REF, through
the referrers API or, on registries without it, the fallback tag
sha256-<hex>. The image and its digest are unchanged. It prints the
artifact's digest, which a deployment can pin.

A trace recorded on another image is refused, naming the first layer that
differs; --force keeps the records of the layers the image has.

With --from OLDREF instead of FILE, the trace attached to OLDREF (of
--workload, or of its only workload) is carried to REF: the records of the
layers the two images share are kept, the others dropped, and the artifact
is marked as carried (annotation dev.dejavu.trace.carried-from). Run it in
CI right after pushing a new release, so that its first starts prefetch
the layers it shares with the last one; a trace recorded on REF later is
preferred to the carried one.`,
		Example: `  dejavu trace attach localhost:5000/app:latest web.djv
  dejavu trace attach localhost:5000/app:v2 --from localhost:5000/app:v1 --workload web`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case from == "" && len(args) != 2:
				return errors.New("want REF and FILE, or REF and --from OLDREF")
			case from != "" && len(args) != 1:
				return errors.New("--from OLDREF takes the place of FILE: give REF alone")
			case from != "" && force:
				return errors.New("--force is for FILE: --from always keeps the shared layers' records")
			case from == "" && workload != "":
				return errors.New("--workload picks the trace to carry: give it with --from")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, ropts, err := traceRef(args[0], rf)
			if err != nil {
				return err
			}
			if from != "" {
				return carry(cmd, ref, from, workload, rf, ropts)
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
	cmd.Flags().StringVar(&from, "from", "", "carry the trace attached to this image (an earlier release) instead of attaching FILE")
	cmd.Flags().StringVar(&workload, "workload", "", "with --from: which workload's trace to carry")
	return cmd
}

// carry attaches to ref the trace of the image from, and says what it kept
// on stderr; stdout has the artifact digest, as for a file.
func carry(cmd *cobra.Command, ref imageref.Ref, from, workload string, rf registryFlags, ropts []imageref.Option) error {
	old, _, err := traceRef(from, rf)
	if err != nil {
		return err
	}
	c, err := trace.Carry(cmd.Context(), ref, old, trace.WithCarryWorkload(workload), trace.WithCarryRefOptions(ropts...))
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), c.Artifact)
	fmt.Fprintf(cmd.ErrOrStderr(), "carried %d records (%s) in %d shared layers from %s; dropped %d records (%s) of layers %s lacks\n",
		c.Kept, humanBytes(c.KeptBytes), c.Layers, c.From, c.Dropped, humanBytes(c.DroppedBytes), ref)
	return nil
}
