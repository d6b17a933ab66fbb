package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/trace"
)

func newTraceLsCmd() *cobra.Command {
	var rf registryFlags
	var output string
	cmd := &cobra.Command{
		Use:   "ls REF",
		Short: "List the traces attached to an image",
		Long: `Ls lists the traces attached to the image at REF: for each, the
artifact digest, its workload, the ranges and bytes it covers in all and
per layer of the image (bottom first), the image it was carried from (by
trace attach --from) or "-" for a trace recorded on this image, and when it
was recorded or carried. A start picks, for its workload, the newest trace
recorded on the image, or when there is none the newest carried one.`,
		Example: `  dejavu trace ls localhost:5000/app:latest
  dejavu trace ls localhost:5000/app:latest -o json`,
		Args: cobra.ExactArgs(1),
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
			fmt.Fprintln(tw, "DIGEST\tWORKLOAD\tRECORDS\tBYTES\tPER LAYER\tCARRIED FROM\tCREATED")
			for _, in := range infos {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", in.Digest, in.Workload, in.Records, humanBytes(in.Bytes),
					perLayer(in.LayerBytes), cmp.Or(in.CarriedFrom, "-"), in.Created.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// perLayer prints bytes per layer, bottom first, or "-" when unknown.
func perLayer(bytes []int64) string {
	if len(bytes) == 0 {
		return "-"
	}
	s := make([]string, len(bytes))
	for i, n := range bytes {
		s[i] = humanBytes(n)
	}
	return strings.Join(s, ", ")
}
