package reports

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestNeedLimit(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		name  string
		curve []NeedPoint
		warm  float64
		want  float64
	}{
		{"no curve", nil, 1, 0},
		{"bytes late in the start: the link decides", []NeedPoint{{0.9, 10 * mb}}, 1, 0.02 + 1 + 0.1},
		{"bytes early, work after them", []NeedPoint{{0.1, 10 * mb}}, 1, 0.02 + 1 + 0.9},
		{"a slow program: its work after the first read decides", []NeedPoint{{0.1, mb}, {0.2, 2 * mb}}, 5, 0.02 + 0.1 + 4.9},
		{"the worst point counts", []NeedPoint{{0.1, mb}, {0.2, 8 * mb}, {0.9, 9 * mb}}, 1, 0.02 + 0.8 + 0.8},
		{"a read after ready counts as at ready", []NeedPoint{{3, 10 * mb}}, 1, 0.02 + 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := needLimit(c.curve, c.warm, 0.02, 10*mb); math.Abs(got-c.want) > 1e-9 {
				t.Errorf("need limit %v, want %v", got, c.want)
			}
		})
	}
}

func TestNeedCurve(t *testing.T) {
	c := NeedCurve([]float64{0.3, 0.1, 0.3, 0.2}, []int64{5, 1, 7, 2})
	want := []NeedPoint{{0.1, 1}, {0.2, 3}, {0.3, 15}}
	if len(c) != len(want) {
		t.Fatalf("curve %v, want %v", c, want)
	}
	for i := range want {
		if c[i] != want[i] {
			t.Fatalf("curve %v, want %v", c, want)
		}
	}
}

// Thinning a long curve keeps its end and never raises the limit: the
// thinned limit is still a lower bound.
func TestNeedCurveThinned(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 10 * MaxNeedPoints
	at, length := make([]float64, n), make([]int64, n)
	var total int64
	for i := range at {
		at[i], length[i] = rng.Float64()*2, rng.Int64N(1<<20)
		total += length[i]
	}
	thinned := NeedCurve(at, length)
	if len(thinned) > MaxNeedPoints+1 {
		t.Fatalf("%d points, want at most %d", len(thinned), MaxNeedPoints+1)
	}
	if last := thinned[len(thinned)-1]; last.Bytes != total {
		t.Errorf("last point %v, want all %d bytes", last, total)
	}
	whole := NeedCurve(at[:MaxNeedPoints], length[:MaxNeedPoints])
	full := thin(append([]NeedPoint(nil), whole...), len(whole))
	if needLimit(thin(whole, 10), 2, 0.02, 1<<20) > needLimit(full, 2, 0.02, 1<<20) {
		t.Error("the thinned curve's limit is above the whole curve's")
	}
}

// Summarize takes the need limit from the median warm start's curve, and
// never puts it below the physical limit.
func TestSummarizeNeedLimit(t *testing.T) {
	const mb = 1 << 20
	r := &Results{Bandwidth: 10 * mb, Starts: []Start{
		{Mode: ModePrefetch, Run: 1, Seconds: 3, NeededBytes: 10 * mb},
		{Mode: ModeWarm, Run: 1, Seconds: 1, Need: []NeedPoint{{0.1, 10 * mb}}},
		{Mode: ModeWarm, Run: 2, Seconds: 5, Need: []NeedPoint{{0.1, mb}}},
		{Mode: ModeWarm, Run: 3, Seconds: 1.2, Need: []NeedPoint{{0.2, 10 * mb}}},
	}}
	r.Summarize(20 * time.Millisecond)
	// The median warm start is run 3: 0.02 + 1 s of bytes + 1 s after them.
	if want := 0.02 + 1 + (1.2 - 0.2); math.Abs(r.NeedLimitSeconds-want) > 1e-9 {
		t.Errorf("need limit %v, want %v (physical %v)", r.NeedLimitSeconds, want, r.PhysicalLimitSeconds)
	}
	r.Starts[3].Need = []NeedPoint{{1.2, 10 * mb}}
	r.Summarize(20 * time.Millisecond)
	if r.NeedLimitSeconds != r.PhysicalLimitSeconds || r.PhysicalLimitSeconds != 1.2 {
		t.Errorf("need limit %v, physical %v: want both the warm start's 1.2 s", r.NeedLimitSeconds, r.PhysicalLimitSeconds)
	}
}
