package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/trace"
)

func newTraceLsCmd() *cobra.Command {
	var rf registryFlags
	var output string
	cmd := &cobra.Command{
		Use:     "ls REF",
		Short:   "List the traces attached to an image",
		Example: `  dejavu trace ls localhost:5000/app:latest`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, ropts, err := traceRef(args[0], rf)
			if err != nil {
				return err
			}
			infos, err := trace.List(cmd.Context(), ref, ropts...)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(infos)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DIGEST\tWORKLOAD\tRECORDS\tBYTES\tCREATED")
			for _, in := range infos {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", in.Digest, in.Workload, in.Records, humanBytes(in.Bytes), in.Created.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}
