package trace

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore/imageref"
)

// Annotations of traces that Carry attaches and of every attached trace.
const (
	// AnnotationCarriedFrom marks a trace carried from another image by
	// Carry: the manifest digest of the image it was recorded on.
	AnnotationCarriedFrom = "dev.dejavu.trace.carried-from"
	// AnnotationLayerBytes is the bytes the trace covers in each layer of
	// the image it is attached to, bottom first, comma separated.
	AnnotationLayerBytes = "dev.dejavu.trace.layer-bytes"
)

// Carried says what Carry kept of the trace it carried.
type Carried struct {
	From     v1.Hash // the image the trace was recorded on
	Artifact v1.Hash // the trace artifact attached to the new image
	// Layers are the layers of the new image that the kept records are
	// in; Kept the records of layers the two images share, Dropped those
	// of layers the new image does not have.
	Layers                  int
	Kept, Dropped           int
	KeptBytes, DroppedBytes int64
}

// Carry attaches to the image at to the trace of the image at from (picked
// as Pull picks it: see WithWorkload), keeping the records of the layers
// the two images share, as a trace marked carried. A release that rebuilt
// only its top layer then prefetches its shared layers before anyone has
// recorded it; a trace recorded on it later is picked before the carried
// one.
func Carry(ctx context.Context, to, from imageref.Ref, opts ...CarryOption) (*Carried, error) {
	var cfg carryConfig
	for _, o := range opts {
		o(&cfg)
	}
	pull := []PullOption{WithPullRefOptions(cfg.opts...)}
	if cfg.workload != "" {
		pull = append(pull, WithWorkload(cfg.workload))
	}
	t, _, err := Pull(ctx, from, pull...)
	if err != nil {
		return nil, fmt.Errorf("trace: carry from %s: %w", from, err)
	}
	c := &Carried{From: t.Image}
	attach := []AttachOption{WithForce(true), WithRefOptions(cfg.opts...), withCarried(t.Image, c)}
	carried := *t
	carried.Created = time.Now().UTC()
	if c.Artifact, err = Attach(ctx, to, &carried, attach...); err != nil {
		return nil, fmt.Errorf("trace: carry to %s: %w", to, err)
	}
	c.DroppedBytes = t.Bytes() - c.KeptBytes
	c.Dropped = len(t.Records) - c.Kept
	return c, nil
}

// CarryOption configures Carry.
type CarryOption func(*carryConfig)

type carryConfig struct {
	workload string
	opts     []imageref.Option
}

// WithCarryWorkload picks the trace of a workload to carry.
func WithCarryWorkload(w string) CarryOption { return func(c *carryConfig) { c.workload = w } }

// WithCarryRefOptions passes registry options for both images.
func WithCarryRefOptions(o ...imageref.Option) CarryOption {
	return func(c *carryConfig) { c.opts = append(c.opts, o...) }
}

// withCarried marks the attached trace as carried from the image from, and
// reports what binding it to the new image kept.
func withCarried(from v1.Hash, report *Carried) AttachOption {
	return func(c *attachConfig) { c.carriedFrom, c.carried = from, report }
}

// layerBytes is AnnotationLayerBytes's value for t.
func layerBytes(t *Trace) string {
	per := make([]int64, len(t.Layers))
	for _, r := range t.Records {
		if r.Layer >= 0 && r.Layer < len(per) {
			per[r.Layer] += r.Length
		}
	}
	s := make([]string, len(per))
	for i, n := range per {
		s[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(s, ",")
}

// parseLayerBytes reads AnnotationLayerBytes's value, or nil when it is
// not a list of byte counts (it is the pusher's to write).
func parseLayerBytes(v string) []int64 {
	if v == "" || len(v) > 64<<10 {
		return nil
	}
	var out []int64
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 0 {
			return nil
		}
		out = append(out, n)
	}
	return out
}

// recordedFirst orders traces as Pull picks them: recorded before carried,
// then newest first.
func recordedFirst(in []Info) {
	slices.SortStableFunc(in, func(a, b Info) int {
		if (a.CarriedFrom == "") != (b.CarriedFrom == "") {
			if a.CarriedFrom == "" {
				return -1
			}
			return 1
		}
		return b.Created.Compare(a.Created)
	})
}

// sharedLayers counts the layers t has records of.
func sharedLayers(t *Trace) int {
	seen := map[int]bool{}
	for _, r := range t.Records {
		seen[r.Layer] = true
	}
	return len(seen)
}
