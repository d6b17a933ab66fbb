package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/reports"
)

func newReportCmd() *cobra.Command {
	var format, out string
	cmd := &cobra.Command{
		Use:   "report RESULTS.json",
		Short: "Render the results of dejavu bench as a table, Markdown, JSON or HTML",
		Long: `Report reads the results file dejavu bench wrote and prints, per mode, the
median, p90, min and max time to ready, the speedup against the lazy and the
full start and against the physical limit (the bytes the start needs at the
link's bandwidth plus a round trip, or the warm start if slower), registry
requests and bytes, the bytes the program read, and the prefetch outcomes:
units fetched before the program asked (hit), while it waited (partial) or
after (miss), and bytes fetched but never read (wasted).

The HTML report is one self-contained file (no network): the table, a bar
per mode with its spread, and for the median start of each mode a timeline
of its demand and prefetch fetches.`,
		Example: `  dejavu report out/bench/results.json
  dejavu report out/bench/results.json -o markdown
  dejavu report out/bench/results.json -o html --out report.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			res, err := reports.Read(f)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			// The summary is derived from the starts: recompute it, so
			// that files from older versions get every column.
			rtt, _ := time.ParseDuration(res.RTT)
			res.Summarize(rtt)
			w := cmd.OutOrStdout()
			if out != "" {
				of, err := os.Create(out)
				if err != nil {
					return err
				}
				defer of.Close()
				w = of
			}
			switch format {
			case "table":
				err = reports.Table(w, res, false)
			case "markdown":
				err = reports.Table(w, res, true)
			case "json":
				err = reports.WriteJSON(w, res)
			case "html":
				err = reports.HTML(w, res)
			default:
				return fmt.Errorf("-o %q: want table, markdown, json or html", format)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "table", "table, markdown, json or html")
	cmd.Flags().StringVar(&out, "out", "", "write to this file instead of standard output")
	return cmd
}
