package trace

import (
	"fmt"
	"slices"
	"time"
)

// Merge merges runs of the same workload on the same image into one trace:
// a byte range is kept when at least minRuns runs read it, and its first
// access is the earliest among them.
func Merge(runs []*Trace, minRuns int) (*Trace, error) {
	if len(runs) == 0 {
		return nil, fmt.Errorf("trace: nothing to merge")
	}
	minRuns = max(minRuns, 1)
	if minRuns > len(runs) {
		return nil, fmt.Errorf("trace: min-runs %d, but %d traces to merge: no range could be kept", minRuns, len(runs))
	}
	base := runs[0]
	for i, t := range runs[1:] {
		if t.Image != base.Image || !slices.Equal(t.Layers, base.Layers) {
			return nil, fmt.Errorf("trace: run %d was recorded on image %s, run 0 on %s", i+1, t.Image, base.Image)
		}
		if t.Workload != base.Workload {
			return nil, fmt.Errorf("trace: run %d is of workload %q, run 0 of %q: merge runs of one workload", i+1, t.Workload, base.Workload)
		}
	}
	out := *base
	out.Runs = 0
	for _, t := range runs {
		out.Runs += max(t.Runs, 1)
	}
	out.Records = nil
	for layer := range base.Layers {
		out.Records = append(out.Records, mergeLayer(runs, layer, minRuns)...)
	}
	out.Records = normalize(out.Records)
	if len(out.Records) == 0 && slices.ContainsFunc(runs, func(t *Trace) bool { return len(t.Records) > 0 }) {
		return nil, fmt.Errorf("trace: no range was read in %d of the %d traces: the merge would be empty", minRuns, len(runs))
	}
	return &out, nil
}

type edge struct {
	at    int64
	delta int // +1 start, -1 end
	run   int
	first time.Duration
}

// mergeLayer sweeps the records of one layer across all runs.
func mergeLayer(runs []*Trace, layer, minRuns int) []Record {
	var edges []edge
	for ri, t := range runs {
		var recs []Record
		for _, r := range t.Records {
			if r.Layer == layer {
				recs = append(recs, r)
			}
		}
		// Within one run, overlapping records count once.
		for _, r := range normalize(recs) {
			edges = append(edges, edge{r.Offset, +1, ri, r.First}, edge{r.End(), -1, ri, r.First})
		}
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if a.at != b.at {
			return cmp64(a.at, b.at)
		}
		return a.delta - b.delta // ends before starts at the same offset
	})
	active := map[int]time.Duration{} // run -> first access of its active record
	var out []Record
	for i, e := range edges {
		if e.delta > 0 {
			active[e.run] = e.first
		} else {
			delete(active, e.run)
		}
		if i+1 == len(edges) {
			break
		}
		next := edges[i+1].at
		if next > e.at && len(active) >= minRuns {
			first := time.Duration(1<<63 - 1)
			for _, f := range active {
				first = min(first, f)
			}
			out = append(out, Record{Layer: layer, Offset: e.at, Length: next - e.at, First: first})
		}
	}
	return out
}
