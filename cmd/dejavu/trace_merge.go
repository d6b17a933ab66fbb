package main

import (
	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/internal/safefile"
	"github.com/dejavu-project/dejavu/trace"
)

func newTraceMergeCmd() *cobra.Command {
	var out string
	var minRuns int
	var force bool
	cmd := &cobra.Command{
		Use:   "merge FILE... --out OUT",
		Short: "Merge traces of the same workload and image",
		Long: `Merge keeps the byte ranges read in at least --min-runs of the traces; the
earliest first access of a range wins.

` + outputHelp("OUT"),
		Example: `  dejavu trace merge run1.djv run2.djv run3.djv --min-runs 2 --out web.djv`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireOut(out, "OUT"); err != nil {
				return err
			}
			if err := safefile.Check(out, safefile.WithReplace(force)); err != nil {
				return forceHint(err)
			}
			var ts []*trace.Trace
			for _, a := range args {
				t, err := trace.ReadFile(a)
				if err != nil {
					return err
				}
				ts = append(ts, t)
			}
			m, err := trace.Merge(ts, minRuns)
			if err != nil {
				return err
			}
			return forceHint(trace.WriteFile(out, m, trace.WithReplace(force)))
		},
	}
	registerOut(cmd, &out, "merged trace file")
	registerForce(cmd.Flags(), &force)
	cmd.Flags().IntVar(&minRuns, "min-runs", 1, "keep ranges seen in at least this many traces")
	return cmd
}
