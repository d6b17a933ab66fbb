package reports

import (
	"cmp"
	"fmt"
	"io"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// SuiteRow compares the modes of one experiment of a suite: one workload
// on one link. Ratios are of medians; 0 where a mode was not run.
type SuiteRow struct {
	Workload string `json:"workload"`
	Link     string `json:"link"`
	// Prefetch is the median prefetching start (seconds).
	Prefetch float64 `json:"prefetchSeconds"`
	// VsLazy is lazy / prefetch (a speedup); VsLimit prefetch / the
	// physical limit; VsFIFO fifo / prefetch (a speedup); VsWarm prefetch
	// / warm; WarmVsLocal warm / local (what FUSE, the loop device and
	// decompression cost a warm start); VsNeedLimit prefetch / the need
	// limit (the physical limit with the program's own time in it).
	VsLazy      float64 `json:"speedupVsLazy"`
	VsLimit     float64 `json:"vsPhysicalLimit"`
	VsNeedLimit float64 `json:"vsNeedLimit,omitempty"`
	VsFIFO      float64 `json:"speedupVsFIFO"`
	VsWarm      float64 `json:"vsWarm"`
	WarmVsLocal float64 `json:"warmVsLocal"`
	// Requests are the median registry requests of the prefetching and
	// of the lazy starts.
	Requests     int64      `json:"prefetchRequests"`
	LazyRequests int64      `json:"lazyRequests"`
	Breakdown    *Breakdown `json:"breakdown,omitempty"`
}

// Suite compares each experiment's prefetching start with its other modes.
// The results must be summarized.
func Suite(rs []*Results) []SuiteRow {
	out := make([]SuiteRow, 0, len(rs))
	for _, r := range rs {
		m := map[Mode]ModeSummary{}
		for _, s := range r.Summary {
			m[s.Mode] = s
		}
		p := m[ModePrefetch]
		out = append(out, SuiteRow{
			Workload: cmp.Or(r.Workload, r.Image), Link: r.link(), Prefetch: p.MedianSeconds,
			VsLazy: quotient(m[ModeLazy].MedianSeconds, p.MedianSeconds), VsLimit: quotient(p.MedianSeconds, r.PhysicalLimitSeconds),
			VsNeedLimit: quotient(p.MedianSeconds, r.NeedLimitSeconds),
			VsFIFO:      quotient(m[ModeFIFO].MedianSeconds, p.MedianSeconds), VsWarm: quotient(p.MedianSeconds, m[ModeWarm].MedianSeconds),
			WarmVsLocal: quotient(m[ModeWarm].MedianSeconds, m[ModeLocal].MedianSeconds),
			Requests:    p.MedianRequests, LazyRequests: m[ModeLazy].MedianRequests, Breakdown: p.Breakdown,
		})
	}
	return out
}

// link names the experiment's link: its profile, or its figures.
func (r *Results) link() string {
	if r.Profile != "" {
		return r.Profile
	}
	return r.RTT + ", " + r.mbit() + " Mbit/s"
}

func quotient(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return a / b
}

// SuiteTable writes the suite as a text table, or as Markdown.
func SuiteTable(w io.Writer, rows []SuiteRow, markdown bool) error {
	opts := []tablewriter.Option{tablewriter.WithHeaderAutoFormat(tw.Off)}
	if markdown {
		opts = append(opts, tablewriter.WithRenderer(renderer.NewMarkdown()))
	}
	t := tablewriter.NewTable(w, opts...)
	t.Header([]string{"workload", "link", "prefetch", "lazy/prefetch", "prefetch/limit", "prefetch/need limit", "fifo/prefetch", "prefetch/warm",
		"requests (prefetch, lazy)", "warm/local", "head", "transfer", "tail", "demand wait"})
	for _, r := range rows {
		head, transfer, tail, demand := "-", "-", "-", "-"
		if b := r.Breakdown; b != nil {
			head, transfer, tail, demand = secs(b.Head), secs(b.Transfer), secs(b.Tail), secs(b.DemandWait)
		}
		if err := t.Append([]string{r.Workload, r.Link, secs(r.Prefetch), speedup(r.VsLazy), speedup(r.VsLimit), speedup(r.VsNeedLimit), speedup(r.VsFIFO),
			speedup(r.VsWarm), fmt.Sprintf("%d, %d", r.Requests, r.LazyRequests), speedup(r.WarmVsLocal), head, transfer, tail, demand}); err != nil {
			return err
		}
	}
	return t.Render()
}
