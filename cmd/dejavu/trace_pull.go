package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/internal/safefile"
	"github.com/dejavu-project/dejavu/trace"
)

func newTracePullCmd() *cobra.Command {
	var rf registryFlags
	var out, digest, workload string
	var force bool
	cmd := &cobra.Command{
		Use:   "pull REF --out FILE",
		Short: "Fetch an attached trace",
		Long: `Pull fetches the trace attached to REF (the newest, the newest of --workload,
or the one --digest names) and writes it to FILE.

` + outputHelp("FILE"),
		Example: `  dejavu trace pull localhost:5000/app:latest --workload web --out web.djv
  dejavu trace pull localhost:5000/app:latest --digest sha256:... --out pinned.djv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireOut(out, "FILE"); err != nil {
				return err
			}
			if err := safefile.Check(out, safefile.WithReplace(force)); err != nil {
				return forceHint(err)
			}
			ref, ropts, err := traceRef(args[0], rf)
			if err != nil {
				return err
			}
			t, d, err := trace.Pull(cmd.Context(), ref, trace.WithDigest(digest), trace.WithWorkload(workload), trace.WithPullRefOptions(ropts...))
			if err != nil {
				return err
			}
			if err := trace.WriteFile(out, t, trace.WithReplace(force)); err != nil {
				return forceHint(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), d)
			return nil
		},
	}
	rf.register(cmd.Flags())
	registerOut(cmd, &out, "trace file to write")
	registerForce(cmd.Flags(), &force)
	cmd.Flags().StringVar(&digest, "digest", "", "the trace artifact digest")
	cmd.Flags().StringVar(&workload, "workload", "", "the newest trace of this workload")
	return cmd
}
