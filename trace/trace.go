package trace

import (
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Record says: these bytes of this layer blob were first needed at First
// after the start.
type Record struct {
	Layer  int   // index into Trace.Layers, 0 = bottom
	Offset int64 // blob coordinates
	Length int64
	First  time.Duration
}

// End returns the first byte after the record.
func (r Record) End() int64 { return r.Offset + r.Length }

// Recorders.
const (
	RecorderBackstore = "backstore"
	RecorderEBPF      = "ebpf"
)

// Trace is a recorded start of a workload on an image.
type Trace struct {
	Image    v1.Hash   // manifest digest recorded on
	Layers   []v1.Hash // layer blob digests, bottom first
	Workload string
	Command  []string
	Recorder string
	Runs     int
	Tool     string // dejavu version that recorded it
	Created  time.Time
	Records  []Record // sorted by First, then layer and offset
}

// Bytes returns the bytes the records cover.
func (t *Trace) Bytes() int64 {
	var n int64
	for _, r := range t.Records {
		n += r.Length
	}
	return n
}

// Span returns the time of the last first access.
func (t *Trace) Span() time.Duration {
	var d time.Duration
	for _, r := range t.Records {
		d = max(d, r.First)
	}
	return d
}

// Normalize merges overlapping and adjacent ranges of each layer (the
// earliest first access wins) and sorts the records by first access.
func (t *Trace) Normalize() {
	t.Records = normalize(t.Records)
}

func normalize(recs []Record) []Record {
	byLayer := map[int][]Record{}
	for _, r := range recs {
		byLayer[r.Layer] = append(byLayer[r.Layer], r)
	}
	var out []Record
	for _, rs := range byLayer {
		slices.SortFunc(rs, func(a, b Record) int {
			if a.Offset != b.Offset {
				return cmp64(a.Offset, b.Offset)
			}
			return cmp64(int64(a.First), int64(b.First))
		})
		cur := rs[0]
		for _, r := range rs[1:] {
			if r.Offset <= cur.End() {
				cur.Length = max(cur.End(), r.End()) - cur.Offset
				cur.First = min(cur.First, r.First)
				continue
			}
			out = append(out, cur)
			cur = r
		}
		out = append(out, cur)
	}
	slices.SortFunc(out, func(a, b Record) int {
		if a.First != b.First {
			return cmp64(int64(a.First), int64(b.First))
		}
		if a.Layer != b.Layer {
			return a.Layer - b.Layer
		}
		return cmp64(a.Offset, b.Offset)
	})
	return out
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
