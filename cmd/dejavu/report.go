package main

import (
	"bytes"
	"encoding/json"
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
		Use:   "report RESULTS.json...",
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

Given several results files (a suite: workloads and links, as make
bench-suite writes them), report prints one row per file comparing its
median prefetching start with lazy, fifo, warm and the physical limit, the
warm start with the local one, and where the prefetching start's time went
(table, markdown or json).

--out is written through a temporary file beside it and a rename. An
existing regular file is replaced only with --force; anything else there (a
device node, a symbolic link, a directory, a FIFO) is never replaced.`,
		Example: `  dejavu report out/bench/results.json
  dejavu report out/bench/results.json -o markdown
  dejavu report out/bench/results.json -o html --out report.html
  dejavu report out/bench/suite/*.json -o markdown`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out != "" {
				if err := safefile.Check(out, safefile.WithReplace(force)); err != nil {
					return forceHint(err)
				}
			}
			var rs []*reports.Results
			for _, a := range args {
				res, err := readResults(a)
				if err != nil {
					return err
				}
				rs = append(rs, res)
			}
			var buf bytes.Buffer
			if err := render(&buf, rs, format); err != nil {
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

// readResults reads a results file and recomputes its summary, so that
// files from older versions get every column.
func readResults(path string) (*reports.Results, error) {
	f, err := safefile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := reports.Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rtt, _ := time.ParseDuration(res.RTT)
	res.Summarize(rtt)
	return res, nil
}

// render writes one experiment's results, or a suite's, in format. The
// caller renders into memory first, so that an error leaves no
// half-written output.
func render(w io.Writer, rs []*reports.Results, format string) error {
	if len(rs) > 1 {
		return renderSuite(w, reports.Suite(rs), format)
	}
	res := rs[0]
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

func renderSuite(w io.Writer, rows []reports.SuiteRow, format string) error {
	switch format {
	case "table":
		return reports.SuiteTable(w, rows, false)
	case "markdown":
		return reports.SuiteTable(w, rows, true)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	return fmt.Errorf("-o %q: a suite of several results renders as table, markdown or json", format)
}
