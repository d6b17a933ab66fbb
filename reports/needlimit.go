package reports

import "slices"

// NeedPoint is a point of a start's need curve: by At seconds after the
// start began, the program had first read Bytes blob bytes in all.
type NeedPoint struct {
	At    float64 `json:"at"`
	Bytes int64   `json:"bytes"`
}

// MaxNeedPoints bounds a need curve in a results file. A curve thinned to
// fewer points gives a need limit no higher than the whole curve's, so it
// stays a lower bound.
const MaxNeedPoints = 512

// NeedCurve builds a need curve from first reads (when each range was
// first read, and its length), in any order, thinned to MaxNeedPoints.
func NeedCurve(at []float64, length []int64) []NeedPoint {
	idx := make([]int, len(at))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case at[a] < at[b]:
			return -1
		case at[a] > at[b]:
			return 1
		}
		return 0
	})
	curve := make([]NeedPoint, 0, len(idx))
	var total int64
	for _, i := range idx {
		total += length[i]
		if n := len(curve); n > 0 && curve[n-1].At == at[i] {
			curve[n-1].Bytes = total
			continue
		}
		curve = append(curve, NeedPoint{At: at[i], Bytes: total})
	}
	return thin(curve, MaxNeedPoints)
}

// thin keeps at most n points of the curve, its last among them.
func thin(curve []NeedPoint, n int) []NeedPoint {
	if len(curve) <= n {
		return curve
	}
	step := (len(curve) + n - 1) / n
	out := make([]NeedPoint, 0, n+1)
	for i := step - 1; i < len(curve); i += step {
		out = append(out, curve[i])
	}
	if last := curve[len(curve)-1]; out[len(out)-1] != last {
		out = append(out, last)
	}
	return out
}

// needLimit is the earliest a cold start could be ready if its bytes came
// in the order the warm start first read them, at the link's full rate
// after one round trip, while the program did everything else as fast as
// it did warm: for each point, the bytes up to it must have arrived, and
// the warm start's time after it still follows. The physical limit leaves
// out that last part, the program's own work after a read, which no
// prefetch can hide for the last bytes it reads.
func needLimit(curve []NeedPoint, warm, rtt float64, bandwidth int64) float64 {
	if len(curve) == 0 || warm <= 0 || bandwidth <= 0 {
		return 0
	}
	limit := warm
	for _, p := range curve {
		limit = max(limit, rtt+float64(p.Bytes)/float64(bandwidth)+warm-min(p.At, warm))
	}
	return limit
}
