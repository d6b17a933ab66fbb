package reports

import (
	"math"
	"strings"
	"testing"
)

func TestSuite(t *testing.T) {
	mk := func(workload, profile string, secs map[Mode]float64) *Results {
		r := &Results{Image: "reg/" + workload, Workload: workload, Profile: profile, RTT: "20ms", Bandwidth: 1 << 20}
		for m, s := range secs {
			st := Start{Mode: m, Run: 1, Seconds: s, Requests: int64(s * 10)}
			if m.Cold() {
				st.NeededBytes = 1 << 20 // 1 s at the bandwidth, plus the RTT
			}
			if m == ModePrefetch {
				st.Timeline = []Fetch{{At: 0.1, Took: 1, First: 0.1, Cause: "prefetch"}}
			}
			r.Starts = append(r.Starts, st)
		}
		r.Summarize(20e6)
		return r
	}
	rows := Suite([]*Results{
		mk("py", "slow", map[Mode]float64{ModeLazy: 6, ModePrefetch: 2, ModeFIFO: 3, ModeWarm: 0.5, ModeLocal: 0.4}),
		mk("cc", "", map[Mode]float64{ModePrefetch: 1.5}),
	})
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	r := rows[0]
	if r.Workload != "py" || r.Link != "slow" || !near(r.VsLazy, 3) || !near(r.VsLimit, 2/1.02) || !near(r.VsFIFO, 1.5) ||
		!near(r.VsWarm, 4) || !near(r.WarmVsLocal, 1.25) || r.Requests != 20 || r.LazyRequests != 60 || r.Breakdown == nil {
		t.Errorf("row 0 = %+v", r)
	}
	if r := rows[1]; r.Link != "20ms, 8.388608 Mbit/s" || r.VsLazy != 0 || r.WarmVsLocal != 0 || !near(r.VsLimit, 1.5/1.02) {
		t.Errorf("row 1 = %+v", r)
	}
	var out strings.Builder
	if err := SuiteTable(&out, rows, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| py ", "| slow ", "3.00x", "1.25x", "| cc "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("suite table lacks %q:\n%s", want, out.String())
		}
	}
}
