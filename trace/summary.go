package trace

import (
	"cmp"
	"slices"
	"time"
)

// largestRanges is how many of a trace's largest records a Summary keeps:
// enough to see what dominates a start without listing every range.
const largestRanges = 10

// Summary is what a trace holds, in the form people read and tools parse
// (the JSON of "dejavu trace inspect -o json").
type Summary struct {
	Image    string    `json:"image"`
	Layers   []string  `json:"layers"`
	Workload string    `json:"workload"`
	Command  []string  `json:"command,omitempty"`
	Recorder string    `json:"recorder"`
	Runs     int       `json:"runs"`
	Tool     string    `json:"tool,omitempty"`
	Created  time.Time `json:"created"`
	Records  int       `json:"records"`
	Bytes    int64     `json:"bytes"`
	Span     string    `json:"span"`
	// PerLayer holds the bytes the records cover in each layer, bottom
	// first.
	PerLayer []int64 `json:"bytesPerLayer"`
	// Largest holds the largest records, largest first.
	Largest []Record `json:"largest"`
}

// Summarize sums t up. Records naming a layer t does not have (a trace that
// was never validated) count in the totals but in no layer.
func Summarize(t *Trace) Summary {
	s := Summary{
		Image: t.Image.String(), Workload: t.Workload, Command: t.Command, Recorder: t.Recorder, Runs: t.Runs, Tool: t.Tool,
		Created: t.Created, Records: len(t.Records), Bytes: t.Bytes(), Span: t.Span().String(), PerLayer: make([]int64, len(t.Layers)),
	}
	for _, l := range t.Layers {
		s.Layers = append(s.Layers, l.String())
	}
	for _, r := range t.Records {
		if r.Layer >= 0 && r.Layer < len(s.PerLayer) {
			s.PerLayer[r.Layer] += r.Length
		}
	}
	big := slices.Clone(t.Records)
	slices.SortFunc(big, func(a, b Record) int { return cmp.Compare(b.Length, a.Length) })
	s.Largest = big[:min(largestRanges, len(big))]
	return s
}
