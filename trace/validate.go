package trace

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrRefused wraps every reason a trace is not used: bytes that are not a
// trace, bounds exceeded, records that contradict the format or the image.
// A trace comes from whoever can push a referrer to the image, so a start
// treats it as untrusted input and goes on without prefetch.
var ErrRefused = errors.New("trace refused")

func refused(err error) error {
	if err == nil || errors.Is(err, ErrRefused) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrRefused, err)
}

// Bounds on what a trace may hold.
//
// Records are blob ranges that trace.Recorder produced and Normalize joined:
// within a layer they are disjoint, so a layer holds at most as many records
// as it has bytes. They are not sector-sized: a read of a compressed
// (ZFile) layer maps to the compressed bytes of its blocks, and a block of
// zeros compresses to a few bytes, so a record may be shorter than 512
// bytes. What bounds the work instead:
//   - MaxRecords, for any trace: a start reading a GiB in 4 KiB pieces
//     records 256 Ki ranges; eight times that costs the planner well under
//     a second and 64 MiB.
//   - the encoded size: the msgpack form may be at most decodeRatio times the
//     encoded bytes (plus decodeSlack), and every record takes at least four
//     msgpack bytes. Recorded traces compress 3 to 10 times; a trace that
//     compresses more is made of repeated records, and its record count is
//     refused from the header, before anything is allocated.
//   - the layers' sizes, where they are known (at attach and at a start): a
//     record must end inside its layer (CheckLayers).
const (
	MaxRecords  = 1 << 21
	decodeRatio = 64
	decodeSlack = 1 << 20
)

// decodeLimit is how many msgpack bytes an encoded trace of n bytes may
// decompress to.
func decodeLimit(n int) int64 {
	return min(int64(n)*decodeRatio+decodeSlack, maxDecoded)
}

// Validate checks what a trace says without the image: records name its
// layers, have sane ranges, do not overlap within a layer (the format
// forbids it, and overlapping duplicates are how a small trace is made to
// cost a lot), and are at most MaxRecords.
func (t *Trace) Validate() error {
	if len(t.Layers) == 0 {
		return refused(fmt.Errorf("trace: no layers"))
	}
	if t.Workload != "" {
		if err := ValidWorkload(t.Workload); err != nil {
			return refused(err)
		}
	}
	if len(t.Records) > MaxRecords {
		return refused(fmt.Errorf("trace: %d records, at most %d are read", len(t.Records), MaxRecords))
	}
	for i, r := range t.Records {
		switch {
		case r.Layer < 0 || r.Layer >= len(t.Layers):
			return refused(fmt.Errorf("trace: record %d names layer %d of %d", i, r.Layer, len(t.Layers)))
		case r.Offset < 0 || r.Length <= 0 || r.Offset > 1<<50 || r.Length > 1<<40:
			return refused(fmt.Errorf("trace: record %d has range %d+%d", i, r.Offset, r.Length))
		case r.First < 0:
			return refused(fmt.Errorf("trace: record %d has negative time", i))
		}
	}
	return refused(t.checkOverlap())
}

// checkSorted refuses records that are not sorted by first access, as the
// encoded form must be (docs/trace-artifact.md): Normalize sorts them so.
// A trace in memory may be in any order (the planner sorts its own copy);
// one that is decoded or attached may not.
func (t *Trace) checkSorted() error {
	for i := 1; i < len(t.Records); i++ {
		if p, r := t.Records[i-1], t.Records[i]; r.First < p.First {
			return refused(fmt.Errorf("trace: records %d and %d are not sorted by first access (%s, then %s)", i-1, i, p.First, r.First))
		}
	}
	return nil
}

// checkOverlap sorts a copy of the records by layer and offset.
func (t *Trace) checkOverlap() error {
	idx := make([]int32, len(t.Records))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int {
		ra, rb := t.Records[a], t.Records[b]
		if ra.Layer != rb.Layer {
			return ra.Layer - rb.Layer
		}
		return cmp64(ra.Offset, rb.Offset)
	})
	for k := 1; k < len(idx); k++ {
		p, r := t.Records[idx[k-1]], t.Records[idx[k]]
		if p.Layer == r.Layer && r.Offset < p.End() {
			return fmt.Errorf("trace: records %d and %d of layer %d overlap (%d+%d, %d+%d)",
				idx[k-1], idx[k], r.Layer, p.Offset, p.Length, r.Offset, r.Length)
		}
	}
	return nil
}

// CheckLayers checks the records against the layers of the image they are
// to be fetched from (bottom first, with their sizes): a record of a layer
// the image has must end inside that layer. Records of layers the image
// lacks are not fetched, so they are not checked.
func (t *Trace) CheckLayers(layers []v1.Descriptor) error {
	size := map[v1.Hash]int64{}
	for _, l := range layers {
		size[l.Digest] = l.Size
	}
	for i, r := range t.Records {
		if r.Layer < 0 || r.Layer >= len(t.Layers) {
			return refused(fmt.Errorf("trace: record %d names layer %d of %d", i, r.Layer, len(t.Layers)))
		}
		n, ok := size[t.Layers[r.Layer]]
		if ok && (r.Offset < 0 || r.Length <= 0 || r.End() > n || r.End() < r.Offset) {
			return refused(fmt.Errorf("trace: record %d (%d+%d) points past layer %d (%s, %d bytes)",
				i, r.Offset, r.Length, r.Layer, t.Layers[r.Layer], n))
		}
	}
	return nil
}

var workloadName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidWorkload refuses a workload name that is not letters, digits, '.',
// '_' and '-' (at most 128, not starting with a punctuation mark): a name
// comes from whoever pushed the trace, and ends up on terminals and in
// file names.
func ValidWorkload(name string) error {
	if !workloadName.MatchString(name) {
		return fmt.Errorf("trace: workload name %s: want letters, digits, '.', '_' or '-' (at most 128)", strconv.QuoteToASCII(name))
	}
	return nil
}
