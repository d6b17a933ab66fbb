package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/trace"
)

func newTraceInspectCmd() *cobra.Command {
	var rf registryFlags
	var output, digest, workload string
	cmd := &cobra.Command{
		Use:   "inspect FILE|REF",
		Short: "Show what a trace holds",
		Example: `  dejavu trace inspect web.djv
  dejavu trace inspect localhost:5000/app:latest --workload web -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t *trace.Trace
			if _, err := os.Stat(args[0]); err == nil {
				if t, err = trace.ReadFile(args[0]); err != nil {
					return err
				}
			} else {
				ref, ropts, err := traceRef(args[0], rf)
				if err != nil {
					return err
				}
				if t, _, err = trace.Pull(cmd.Context(), ref, trace.WithDigest(digest), trace.WithWorkload(workload), trace.WithPullRefOptions(ropts...)); err != nil {
					return err
				}
			}
			s := trace.Summarize(t)
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			case "table":
				return printTraceSummary(cmd.OutOrStdout(), s)
			}
			return fmt.Errorf("--output %q: want table or json", output)
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	cmd.Flags().StringVar(&digest, "digest", "", "for REF: the trace artifact digest")
	cmd.Flags().StringVar(&workload, "workload", "", "for REF: the workload")
	return cmd
}

func printTraceSummary(w io.Writer, s trace.Summary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "workload\t%s\n", s.Workload)
	fmt.Fprintf(tw, "image\t%s\n", s.Image)
	fmt.Fprintf(tw, "recorder\t%s, %d run(s), %s\n", s.Recorder, s.Runs, s.Created.Format(time.RFC3339))
	fmt.Fprintf(tw, "records\t%d\n", s.Records)
	fmt.Fprintf(tw, "bytes\t%d (%s)\n", s.Bytes, humanBytes(s.Bytes))
	fmt.Fprintf(tw, "time span\t%s\n", s.Span)
	for i, l := range s.Layers {
		fmt.Fprintf(tw, "layer %d\t%s: %s\n", i, l, humanBytes(s.PerLayer[i]))
	}
	fmt.Fprintf(tw, "largest ranges\t\n")
	for _, r := range s.Largest {
		fmt.Fprintf(tw, "  layer %d\t%d+%d (%s) first at %s\n", r.Layer, r.Offset, r.Length, humanBytes(r.Length), r.First)
	}
	return tw.Flush()
}
