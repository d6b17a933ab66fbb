package main

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/dejavu-project/dejavu/internal/safefile"
	"github.com/dejavu-project/dejavu/reports"
)

func newReportCmd() *cobra.Command {
	var format, out string
	var force bool
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
of its demand and prefetch fetches.

--out is written through a temporary file beside it and a rename. An
existing regular file is replaced only with --force; anything else there (a
device node, a symbolic link, a directory, a FIFO) is never replaced.`,
		Example: `  dejavu report out/bench/results.json
  dejavu report out/bench/results.json -o markdown
  dejavu report out/bench/results.json -o html --out report.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out != "" {
				if err := safefile.Check(out, safefile.WithReplace(force)); err != nil {
					return forceHint(err)
				}
			}
			f, err := safefile.Open(args[0])
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
			var buf bytes.Buffer
			if err := render(&buf, res, format); err != nil {
				return err
			}
			if out == "" {
				_, err := cmd.OutOrStdout().Write(buf.Bytes())
				return err
			}
			return forceHint(safefile.WriteFile(out, buf.Bytes(), safefile.WithReplace(force)))
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "table", "table, markdown, json or html")
	cmd.Flags().StringVar(&out, "out", "", "write to this file instead of standard output")
	registerForce(cmd.Flags(), &force)
	return cmd
}

// render writes res in format. The caller renders into memory first, so
// that an error leaves no half-written output.
func render(w io.Writer, res *reports.Results, format string) error {
	switch format {
	case "table":
		return reports.Table(w, res, false)
	case "markdown":
		return reports.Table(w, res, true)
	case "json":
		return reports.WriteJSON(w, res)
	case "html":
		return reports.HTML(w, res)
	}
	return fmt.Errorf("-o %q: want table, markdown, json or html", format)
}
