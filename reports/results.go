package reports

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/dejavu-project/dejavu/prefetch"
)

// Results is one experiment: every start, and per-mode summaries.
type Results struct {
	Image string `json:"image"`
	// Workload is the workload whose trace the prefetching starts used.
	Workload  string   `json:"workload,omitempty"`
	Command   []string `json:"command,omitempty"`
	Ready     string   `json:"ready"`
	RTT       string   `json:"rtt"`
	Bandwidth int64    `json:"bandwidthBytesPerSecond"`
	// Profile is the link profile's name, if the link was one.
	Profile string `json:"profile,omitempty"`
	Runs    int    `json:"runs"`
	// Runtime is how the workload was started: dejavu (in-process) or
	// containerd (with the dejavu snapshotter).
	Runtime Runtime       `json:"runtime,omitempty"`
	Starts  []Start       `json:"starts"`
	Summary []ModeSummary `json:"summary"`
	// PhysicalLimitSeconds is max(warm, needed bytes / bandwidth + RTT),
	// with the median needed bytes of the cold starts: no cold start can
	// be faster.
	PhysicalLimitSeconds float64 `json:"physicalLimitSeconds"`
	NeededBytes          int64   `json:"neededBytes"`
	// NeedLimitSeconds is the physical limit with the program's own time
	// in it (see needLimit), from the median warm start's need curve, and
	// never below PhysicalLimitSeconds; 0 without warm starts.
	NeedLimitSeconds float64 `json:"needLimitSeconds,omitempty"`
}

// Start is one timed start.
type Start struct {
	Mode      Mode    `json:"mode"`
	Run       int     `json:"run"`
	Seconds   float64 `json:"seconds"`
	Requests  int64   `json:"registryRequests"`
	Fetched   int64   `json:"registryBytes"`
	ReadBytes int64   `json:"programReadBytes"`
	// NeededBytes are the blob bytes the program's reads mapped to: what
	// any start must fetch, whatever its policy (layer indexes aside).
	NeededBytes int64            `json:"neededBytes"`
	Prefetch    *prefetch.Report `json:"prefetch,omitempty"`
	// Timeline holds the start's blob fetches, for the HTML report.
	Timeline []Fetch `json:"timeline,omitempty"`
	// Need is the need curve of a warm start: when the program first read
	// how many blob bytes.
	Need []NeedPoint `json:"need,omitempty"`
}

// Fetch is one request for blob bytes during a start.
type Fetch struct {
	At   float64 `json:"at"`   // seconds after the start began
	Took float64 `json:"took"` // seconds
	// First is when, after At, the first of its ranges had arrived
	// (seconds; 0 in results of older versions).
	First  float64 `json:"first,omitempty"`
	Cause  string  `json:"cause"`
	Bytes  int64   `json:"bytes"`
	Ranges int     `json:"ranges"`
	// What the request was, for requests that are not for blob ranges.
	What string `json:"what,omitempty"`
}

// CauseRegistry is the Cause of a request that was not for blob ranges:
// a manifest, a referrers list, a config or a trace.
const CauseRegistry = "registry"

// ModeSummary sums up the starts of one mode.
type ModeSummary struct {
	Mode           Mode    `json:"mode"`
	Starts         int     `json:"starts"`
	MedianSeconds  float64 `json:"medianSeconds"`
	P90Seconds     float64 `json:"p90Seconds"`
	MinSeconds     float64 `json:"minSeconds"`
	MaxSeconds     float64 `json:"maxSeconds"`
	VsLazy         float64 `json:"speedupVsLazy,omitempty"` // lazy median / this median
	VsFull         float64 `json:"speedupVsFull,omitempty"`
	MedianRequests int64   `json:"medianRequests"`
	MedianBytes    int64   `json:"medianBytes"`
	MedianRead     int64   `json:"medianProgramReadBytes"`
	// Prefetch outcomes, medians over the mode's starts.
	Hit         int   `json:"prefetchHit,omitempty"`
	Partial     int   `json:"prefetchPartial,omitempty"`
	Miss        int   `json:"prefetchMiss,omitempty"`
	WastedBytes int64 `json:"prefetchWastedBytes,omitempty"`
	// Breakdown is where the time of the median start went, for modes
	// that prefetch.
	Breakdown *Breakdown `json:"breakdown,omitempty"`
}

// Summarize fills Summary (modes in the order they first appear) and the
// physical limit from the starts.
func (r *Results) Summarize(rtt time.Duration) {
	var modes []Mode
	for _, s := range r.Starts {
		if !slices.Contains(modes, s.Mode) {
			modes = append(modes, s.Mode)
		}
	}
	r.Summary = r.Summary[:0]
	for _, m := range modes {
		r.Summary = append(r.Summary, summarize(m, r.Starts))
	}
	base := map[Mode]float64{}
	for _, m := range r.Summary {
		base[m.Mode] = m.MedianSeconds
	}
	for i := range r.Summary {
		m := &r.Summary[i]
		if m.Mode.Prefetches() {
			if s := medianStart(r.Starts, *m); s != nil {
				m.Breakdown = breakdown(s)
			}
		}
		if l := base[ModeLazy]; l > 0 && m.MedianSeconds > 0 {
			m.VsLazy = l / m.MedianSeconds
		}
		if f := base[ModeFull]; f > 0 && m.MedianSeconds > 0 {
			m.VsFull = f / m.MedianSeconds
		}
	}
	var needed []int64
	for _, s := range r.Starts {
		if s.Mode.Cold() && s.NeededBytes > 0 {
			needed = append(needed, s.NeededBytes)
		}
	}
	r.NeededBytes, r.PhysicalLimitSeconds, r.NeedLimitSeconds = 0, 0, 0
	if len(needed) == 0 || r.Bandwidth <= 0 {
		return
	}
	r.NeededBytes = median(needed)
	r.PhysicalLimitSeconds = max(float64(r.NeededBytes)/float64(r.Bandwidth)+rtt.Seconds(), base[ModeWarm])
	// Both are lower bounds, so the larger is one too.
	if w := medianStart(r.Starts, ModeSummary{Mode: ModeWarm, MedianSeconds: base[ModeWarm]}); w != nil && len(w.Need) > 0 {
		r.NeedLimitSeconds = max(needLimit(w.Need, base[ModeWarm], rtt.Seconds(), r.Bandwidth), r.PhysicalLimitSeconds)
	}
}

func summarize(mode Mode, starts []Start) ModeSummary {
	var secs []float64
	var reqs, bytes, read, wasted []int64
	var hit, partial, miss []int64
	for _, s := range starts {
		if s.Mode != mode {
			continue
		}
		secs = append(secs, s.Seconds)
		reqs = append(reqs, s.Requests)
		bytes = append(bytes, s.Fetched)
		read = append(read, s.ReadBytes)
		if p := s.Prefetch; p != nil {
			hit = append(hit, int64(p.Hit))
			partial = append(partial, int64(p.Partial))
			miss = append(miss, int64(p.Miss))
			wasted = append(wasted, p.Wasted)
		}
	}
	m := ModeSummary{Mode: mode, Starts: len(secs)}
	if len(secs) == 0 {
		return m
	}
	slices.Sort(secs)
	m.MedianSeconds = secs[len(secs)/2]
	if len(secs)%2 == 0 {
		m.MedianSeconds = (secs[len(secs)/2-1] + secs[len(secs)/2]) / 2
	}
	m.P90Seconds = secs[int(math.Ceil(0.9*float64(len(secs))))-1]
	m.MinSeconds, m.MaxSeconds = secs[0], secs[len(secs)-1]
	m.MedianRequests, m.MedianBytes, m.MedianRead = median(reqs), median(bytes), median(read)
	if len(hit) > 0 {
		m.Hit, m.Partial, m.Miss = int(median(hit)), int(median(partial)), int(median(miss))
		m.WastedBytes = median(wasted)
	}
	return m
}

// median of int64s (the lower middle for an even count).
func median(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// maxResults bounds what Read takes in: the results of thousands of
// starts, timelines included, are a few MiB.
const maxResults = 64 << 20

// Read decodes results written by WriteJSON.
func Read(r io.Reader) (*Results, error) {
	var res Results
	lr := &io.LimitedReader{R: r, N: maxResults + 1}
	if err := json.NewDecoder(lr).Decode(&res); err != nil {
		if lr.N <= 0 {
			return nil, fmt.Errorf("reports: the results are larger than %d MiB; not a results file", maxResults>>20)
		}
		return nil, fmt.Errorf("reports: %w", err)
	}
	if len(res.Starts) == 0 {
		return nil, fmt.Errorf("reports: no starts in the results")
	}
	for i, s := range res.Starts {
		if s.Mode == "" || s.Seconds < 0 || math.IsNaN(s.Seconds) || math.IsInf(s.Seconds, 0) {
			return nil, fmt.Errorf("reports: start %d: mode %q, %v seconds", i, s.Mode, s.Seconds)
		}
	}
	return &res, nil
}

// WriteJSON writes the results, indented.
func WriteJSON(w io.Writer, r *Results) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
