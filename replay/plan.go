package replay

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/trace"
)

// Unit is one fetch of the plan: a byte range of a layer blob of the image
// being started.
type Unit struct {
	Layer          int // index in the image, 0 = bottom
	Offset, Length int64
	First          time.Duration // earliest first access of what it holds
}

// End returns the first byte after the unit.
func (u Unit) End() int64 { return u.Offset + u.Length }

// Plan is an ordered list of units.
type Plan struct {
	Units        []Unit
	Bytes        int64
	Dropped      int   // records of layers the image does not have
	DroppedBytes int64 //
	Skipped      int64 // bytes already cached
	Cut          int64 // bytes left out by the budget
}

// Options tune a plan.
type Options struct {
	Policy  Policy
	Gap     int64 // join ranges of a layer this close (default 1 KiB)
	MaxUnit int64 // cap on a unit (default 1 MiB)
	Budget  int64 // stop after this many bytes (0: no budget)
	// Window bounds how far apart in first access two ranges may be and
	// still be joined (default 100 ms): joining a range needed much later
	// would delay one needed now.
	Window time.Duration
}

func (o Options) withDefaults() Options {
	if o.Policy == "" {
		o.Policy = PolicyDejavu
	}
	if o.Gap == 0 {
		// Ranges are fetched exactly, several to a request: the bytes
		// between two ranges are worth fetching only when they cost less
		// than another part of the multipart answer, about the cache's
		// page (512 bytes) or two.
		o.Gap = 1 << 10
	}
	if o.MaxUnit == 0 {
		// Small enough that a start's first megabytes spread over several
		// workers, large enough that a request is worth its round trip.
		o.MaxUnit = 1 << 20
	}
	if o.Window == 0 {
		o.Window = 100 * time.Millisecond
	}
	return o
}

// Cached reports whether a blob range of a layer is already local.
type Cached func(layer int, off, n int64) bool

// New builds the plan for starting the image with the given layers (bottom
// first, with their sizes). The trace is untrusted: one that Validate or
// CheckLayers refuses is refused (the error wraps trace.ErrRefused), which
// bounds the plan by trace.MaxRecords and the layers' bytes; so is a trace
// none of whose layers the image has.
func New(t *trace.Trace, layers []v1.Descriptor, cached Cached, opts Options) (*Plan, error) {
	opts = opts.withDefaults()
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	if err := t.CheckLayers(layers); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	index := map[v1.Hash]int{}
	for i, l := range layers {
		index[l.Digest] = i
	}
	remap := make([]int, len(t.Layers))
	matched := 0
	for i, l := range t.Layers {
		if j, ok := index[l]; ok {
			remap[i] = j
			matched++
		} else {
			remap[i] = -1
		}
	}
	if matched == 0 {
		return nil, fmt.Errorf("replay: %w: it was recorded on %s and shares no layer with this image", trace.ErrRefused, t.Image)
	}
	p := &Plan{}
	var recs []trace.Record
	for _, r := range t.Records {
		if r.Layer < 0 || r.Layer >= len(remap) || remap[r.Layer] < 0 {
			p.Dropped++
			p.DroppedBytes += r.Length
			continue
		}
		r.Layer = remap[r.Layer]
		recs = append(recs, r)
	}
	if opts.Policy != PolicyFIFO {
		slices.SortStableFunc(recs, func(a, b trace.Record) int { return cmp.Compare(a.First, b.First) })
	}
	var units []Unit
	if opts.Policy == PolicyFIFO {
		units = fifo(recs, opts)
	} else {
		units = join(recs, opts)
	}
	for _, u := range units {
		if cached != nil && cached(u.Layer, u.Offset, u.Length) {
			p.Skipped += u.Length
			continue
		}
		if opts.Budget > 0 && p.Bytes+u.Length > opts.Budget {
			p.Cut += u.Length
			continue
		}
		p.Units = append(p.Units, u)
		p.Bytes += u.Length
	}
	return p, nil
}

// fifo keeps the recorded order and splits reads at MaxUnit.
func fifo(recs []trace.Record, opts Options) []Unit {
	var out []Unit
	for _, r := range recs {
		for off := r.Offset; off < r.End(); off += opts.MaxUnit {
			out = append(out, Unit{Layer: r.Layer, Offset: off, Length: min(opts.MaxUnit, r.End()-off), First: r.First})
		}
	}
	return out
}

// join walks the records in first-access order and grows the open unit of
// a layer while the next range is near it in space and time; units are
// emitted in the order of their first access.
func join(recs []trace.Record, opts Options) []Unit {
	var out []Unit
	open := map[int]int{} // layer -> index in out of its open unit
	for _, r := range recs {
		if i, ok := open[r.Layer]; ok {
			u := &out[i]
			near := r.Offset >= u.Offset-opts.Gap && r.Offset <= u.End()+opts.Gap
			soon := r.First-u.First <= opts.Window
			lo, hi := min(u.Offset, r.Offset), max(u.End(), r.End())
			if near && soon && hi-lo <= opts.MaxUnit {
				u.Offset, u.Length = lo, hi-lo
				continue
			}
		}
		// Split a range larger than a unit.
		for off := r.Offset; off < r.End(); off += opts.MaxUnit {
			out = append(out, Unit{Layer: r.Layer, Offset: off, Length: min(opts.MaxUnit, r.End()-off), First: r.First})
		}
		open[r.Layer] = len(out) - 1
	}
	return out
}
