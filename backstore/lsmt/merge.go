package lsmt

import (
	"fmt"
	"sort"
)

// Index is a sorted list of non-overlapping mappings, the merged view of a
// stack of layers. Tag says which layer (0 = bottom) holds each mapping.
type Index struct {
	m []Mapping
}

// MaxLayers is the most layers a stack may have: the tag is one byte.
const MaxLayers = 255

// Merge merges the indexes of a stack of layers, bottom first, top-down: an
// upper mapping wins over the layers below it, and what it leaves uncovered
// falls through.
func Merge(layers ...[]Mapping) (*Index, error) {
	if len(layers) > MaxLayers {
		return nil, fmt.Errorf("lsmt: %d layers, at most %d can be merged", len(layers), MaxLayers)
	}
	for i, l := range layers {
		if err := checkOrder(l); err != nil {
			return nil, fmt.Errorf("lsmt: merge layer %d: %w", i, err)
		}
	}
	var merged []Mapping
	for i, l := range layers {
		tagged := make([]Mapping, len(l))
		for j, m := range l {
			m.Tag = uint8(i)
			tagged[j] = m
		}
		merged = overlay(tagged, merged)
	}
	return &Index{m: merged}, nil
}

// checkOrder verifies what overlay relies on: mappings are non-empty,
// sorted, non-overlapping and inside the 2^50 sectors an index can address.
// Without it, a bad list yields a merged index whose pieces run backwards.
func checkOrder(l []Mapping) error {
	var prevEnd uint64
	for j, m := range l {
		switch {
		case m.Length == 0:
			return fmt.Errorf("mapping %d %v has length 0", j, m)
		case m.Offset < prevEnd:
			return fmt.Errorf("mapping %d %v overlaps or precedes the previous one (ends at %d)", j, m, prevEnd)
		case m.Offset > MaxOffset || m.End() > MaxOffset:
			return fmt.Errorf("mapping %d %v goes past sector %d", j, m, uint64(MaxOffset))
		}
		prevEnd = m.End()
	}
	return nil
}

// overlay returns upper with the parts of lower that upper does not cover;
// both are sorted and non-overlapping, and so is the result.
func overlay(upper, lower []Mapping) []Mapping {
	if len(lower) == 0 {
		return upper
	}
	out := make([]Mapping, 0, len(upper)+len(lower))
	j := 0
	var low Mapping
	haveLow := false
	nextLow := func() bool {
		if j == len(lower) {
			return false
		}
		low, haveLow = lower[j], true
		j++
		return true
	}
	nextLow()
	for _, up := range upper {
		// Emit the parts of lower mappings that end before up starts.
		for haveLow && low.Offset < up.Offset {
			if low.End() <= up.Offset {
				out = append(out, low)
				haveLow = nextLow()
				continue
			}
			out = append(out, clip(low, low.Offset, up.Offset))
			low = clip(low, up.Offset, low.End())
		}
		out = append(out, up)
		// Drop what up hides.
		for haveLow && low.Offset < up.End() {
			if low.End() <= up.End() {
				haveLow = nextLow()
				continue
			}
			low = clip(low, up.End(), low.End())
		}
	}
	for haveLow {
		out = append(out, low)
		haveLow = nextLow()
	}
	return out
}

// clip returns the part of m that covers sectors [start, end).
func clip(m Mapping, start, end uint64) Mapping {
	d := start - m.Offset
	m.Offset = start
	m.Length = uint32(end - start)
	if !m.Zeroed {
		m.MOffset += d
	}
	return m
}

// Mappings returns the merged mappings. Do not modify them.
func (x *Index) Mappings() []Mapping { return x.m }

// Len returns the number of merged mappings.
func (x *Index) Len() int { return len(x.m) }

// Lookup appends to dst the mappings that cover sectors [start, end),
// clipped to that range, and returns it. Sectors no mapping covers are gaps
// (they read as zeros).
func (x *Index) Lookup(dst []Mapping, start, end uint64) []Mapping {
	i := sort.Search(len(x.m), func(i int) bool { return x.m[i].End() > start })
	for ; i < len(x.m) && x.m[i].Offset < end; i++ {
		m := x.m[i]
		dst = append(dst, clip(m, max(m.Offset, start), min(m.End(), end)))
	}
	return dst
}
