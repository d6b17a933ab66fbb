package reports

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// Table writes the per-mode summary as a text table, or as Markdown, with
// the physical limit under it.
func Table(w io.Writer, r *Results, markdown bool) error {
	opts := []tablewriter.Option{tablewriter.WithHeaderAutoFormat(tw.Off)}
	if markdown {
		opts = append(opts, tablewriter.WithRenderer(renderer.NewMarkdown()))
	}
	t := tablewriter.NewTable(w, opts...)
	all := rows(r)
	t.Header(all[0])
	for _, row := range all[1:] {
		if err := t.Append(row); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	if l := limitLine(r); l != "" {
		if _, err := fmt.Fprintf(w, "\n%s\n", l); err != nil {
			return err
		}
	}
	for _, l := range breakdownLines(r) {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return err
		}
	}
	return nil
}

// breakdownLines say where the median start of each prefetching mode spent
// its time.
func breakdownLines(r *Results) []string {
	var out []string
	for _, m := range r.Summary {
		if m.Breakdown != nil {
			out = append(out, fmt.Sprintf("median %s start, %s", m.Mode, m.Breakdown))
		}
	}
	return out
}

// rows are the summary table's cells, the header first.
func rows(r *Results) [][]string {
	out := [][]string{{"mode", "median", "p90", "min", "max", "vs lazy", "vs full", "vs limit",
		"vs need limit", "requests", "fetched", "program read", "prefetch hit/partial/miss", "wasted"}}
	for _, m := range r.Summary {
		limit, need := ratio(m.MedianSeconds, r.PhysicalLimitSeconds), ratio(m.MedianSeconds, r.NeedLimitSeconds)
		if !m.Mode.Cold() {
			limit, need = "-", "-" // the limits bound cold starts
		}
		outcomes, wasted := "-", "-"
		if m.Mode.Prefetches() {
			outcomes = fmt.Sprintf("%d/%d/%d", m.Hit, m.Partial, m.Miss)
			wasted = HumanBytes(m.WastedBytes)
		}
		out = append(out, []string{string(m.Mode), secs(m.MedianSeconds), secs(m.P90Seconds), secs(m.MinSeconds), secs(m.MaxSeconds),
			speedup(m.VsLazy), speedup(m.VsFull), limit, need, strconv.FormatInt(m.MedianRequests, 10),
			HumanBytes(m.MedianBytes), HumanBytes(m.MedianRead), outcomes, wasted})
	}
	return out
}

// limitLine explains the physical limit, or is empty when there is none.
func limitLine(r *Results) string {
	if r.PhysicalLimitSeconds <= 0 {
		return ""
	}
	l := fmt.Sprintf("physical limit %s: the start needs %s at %s Mbit/s plus one round trip (%s), or the warm start if slower",
		secs(r.PhysicalLimitSeconds), HumanBytes(r.NeededBytes), r.mbit(), r.RTT)
	if r.NeedLimitSeconds > 0 {
		l += fmt.Sprintf("\nneed limit %s: the same, with the program's own time after each read as the warm start took it", secs(r.NeedLimitSeconds))
	}
	return l
}

// mbit is the link's bandwidth in Mbit/s, as the reports print it.
func (r *Results) mbit() string { return strconv.FormatFloat(float64(r.Bandwidth)*8/1e6, 'f', -1, 64) }

func secs(s float64) string { return strconv.FormatFloat(s, 'f', 3, 64) + "s" }

func speedup(x float64) string {
	if x <= 0 {
		return "-"
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "x"
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return speedup(a / b)
}

// HumanBytes prints a byte count in binary units.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(n)/unit, 0
	for v >= unit && i < len(units)-1 {
		v /= unit
		i++
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0") + " " + units[i]
}
