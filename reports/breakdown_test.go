package reports

import (
	"math"
	"strings"
	"testing"
)

func TestBreakdown(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	s := &Start{Mode: ModePrefetch, Run: 3, Seconds: 4, Timeline: []Fetch{
		{At: 0.05, Took: 0.02, Cause: "open"},
		{At: 0.10, Took: 1.0, First: 0.15, Cause: "prefetch"},
		{At: 0.12, Took: 2.5, First: 0.4, Cause: "prefetch"},
		{At: 0.5, Took: 0.3, Cause: "demand"},
		{At: 0.7, Took: 0.3, Cause: "demand"}, // overlaps the one before: 0.5 s in all
		{At: 2.0, Took: 0.1, Cause: "demand"},
		{At: 3.0, Took: 0.2, Cause: "prefetch", First: 0.1}, // the last byte at 3.2
	}}
	b := breakdown(s)
	if b == nil {
		t.Fatal("no breakdown of a prefetching start")
	}
	if b.Run != 3 || !near(b.Head, 0.25) || !near(b.Transfer, 3.2-0.25) || !near(b.Tail, 0.8) || !near(b.DemandWait, 0.6) {
		t.Errorf("breakdown = %+v; want head 0.25, transfer 2.95, tail 0.8, demand 0.6", *b)
	}
	if !strings.Contains(b.String(), "0.250s before the first prefetched byte") {
		t.Errorf("String() = %q", b.String())
	}

	// Fetches that go on after ready count up to ready only.
	s = &Start{Mode: ModePrefetch, Seconds: 1, Timeline: []Fetch{{At: 0.1, Took: 5, Cause: "prefetch"}}}
	if b := breakdown(s); b == nil || !near(b.Head, 1) || b.Transfer != 0 || b.Tail != 0 {
		t.Errorf("breakdown past ready = %+v", b)
	}
	if b := breakdown(&Start{Mode: ModeLazy, Seconds: 1, Timeline: []Fetch{{At: 0.1, Took: 0.2, Cause: "demand"}}}); b != nil {
		t.Errorf("a start without prefetch has a breakdown: %+v", *b)
	}
}

// The summary carries the median prefetching start's breakdown and the
// table says it.
func TestSummaryHasBreakdown(t *testing.T) {
	r := &Results{Bandwidth: 1 << 20, RTT: "20ms"}
	for i, secs := range []float64{3, 1, 2} {
		r.Starts = append(r.Starts, Start{Mode: ModePrefetch, Run: i + 1, Seconds: secs, Timeline: []Fetch{{At: 0.1, Took: secs / 2, First: 0.05, Cause: "prefetch"}}})
	}
	r.Summarize(0)
	b := r.Summary[0].Breakdown
	if b == nil || b.Run != 3 {
		t.Fatalf("breakdown %+v; want that of run 3, the median", b)
	}
	var out strings.Builder
	if err := Table(&out, r, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "median prefetch start, run 3: 0.150s before the first prefetched byte") {
		t.Errorf("table:\n%s", out.String())
	}
}
