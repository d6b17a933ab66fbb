package reports

import (
	"cmp"
	"fmt"
	"slices"
)

// Breakdown says where the time of one prefetching start went, from its
// fetches: the head before the first prefetched byte arrived (mount,
// manifest, trace lookup, first round trip), the transfer from then to the
// last byte of any fetch, and the tail from the last byte to ready (the
// program's own work once its bytes were local). DemandWait is the part of
// the start during which at least one demand fetch was in flight: the
// program waited on bytes the prefetch had not brought yet.
type Breakdown struct {
	Run        int     `json:"run"`
	Head       float64 `json:"beforeFirstPrefetchByteSeconds"`
	Transfer   float64 `json:"transferSeconds"`
	Tail       float64 `json:"afterLastByteSeconds"`
	DemandWait float64 `json:"demandWaitSeconds"`
}

// breakdown of a start, or nil if it prefetched nothing.
func breakdown(s *Start) *Breakdown {
	first, last := -1.0, 0.0
	var demand [][2]float64
	for _, f := range s.Timeline {
		end := min(f.At+f.Took, s.Seconds)
		last = max(last, end)
		switch f.Cause {
		case "prefetch":
			arrived := f.At + f.Took
			if f.First > 0 {
				arrived = f.At + f.First
			}
			if first < 0 || arrived < first {
				first = arrived
			}
		case "demand":
			demand = append(demand, [2]float64{max(f.At, 0), end})
		}
	}
	if first < 0 {
		return nil
	}
	first = min(first, s.Seconds)
	return &Breakdown{Run: s.Run, Head: first, Transfer: max(last-first, 0), Tail: max(s.Seconds-max(last, first), 0),
		DemandWait: union(demand)}
}

// union is the total length covered by the intervals.
func union(iv [][2]float64) float64 {
	slices.SortFunc(iv, func(a, b [2]float64) int { return cmp.Compare(a[0], b[0]) })
	var total, end float64
	for i, v := range iv {
		if i == 0 || v[0] > end {
			if v[1] > v[0] {
				total += v[1] - v[0]
			}
			end = v[1]
			continue
		}
		if v[1] > end {
			total += v[1] - end
			end = v[1]
		}
	}
	return total
}

// String is the breakdown in one line.
func (b *Breakdown) String() string {
	return fmt.Sprintf("run %d: %s before the first prefetched byte, %s transfer, %s after the last byte; %s waiting on demand fetches",
		b.Run, secs(b.Head), secs(b.Transfer), secs(b.Tail), secs(b.DemandWait))
}
