package backstore

import (
	"context"
	"fmt"
)

// Prefetch makes blob bytes [off, off+n) of a layer present in the cache
// ahead of demand. It shares fetches in flight with demand reads both ways:
// a demand read of a range being prefetched waits for that fetch, and a
// prefetch of a range a demand read is fetching waits for it too.
func (b *Backstore) Prefetch(ctx context.Context, layer int, off, n int64) error {
	if layer < 0 || layer >= len(b.layers) {
		return fmt.Errorf("backstore: prefetch of layer %d of %d", layer, len(b.layers))
	}
	l := b.layers[layer].lazy
	if off < 0 || n <= 0 || off >= l.size {
		return nil
	}
	return l.ensure(ctx, off, min(n, l.size-off), CausePrefetch)
}

// PrefetchExact makes exactly the given blob ranges of a layer (rounded out
// to 512-byte pages) present, in as few requests as the registry allows: one
// multi-range request where it serves them. Unlike Prefetch, which fetches
// whole fetch units as a demand read would, it brings no neighbouring bytes.
func (b *Backstore) PrefetchExact(ctx context.Context, layer int, ranges []Extent) error {
	if layer < 0 || layer >= len(b.layers) {
		return fmt.Errorf("backstore: prefetch of layer %d of %d", layer, len(b.layers))
	}
	l := b.layers[layer].lazy
	clipped := make([]Extent, 0, len(ranges))
	for _, r := range ranges {
		if r.Offset < 0 || r.Length <= 0 || r.Offset >= l.size {
			continue
		}
		clipped = append(clipped, Extent{r.Offset, min(r.Length, l.size-r.Offset)})
	}
	if len(clipped) == 0 {
		return nil
	}
	return l.ensureExact(ctx, clipped, CausePrefetch)
}

// Held reports whether blob bytes [off, off+n) of a layer are cached.
func (b *Backstore) Held(layer int, off, n int64) bool {
	if layer < 0 || layer >= len(b.layers) {
		return false
	}
	l := b.layers[layer].lazy
	if off < 0 || n <= 0 || off >= l.size {
		return true
	}
	return l.held(off, min(n, l.size-off))
}

// DemandInFlight returns how many fetches for demand reads are under way;
// a prefetcher holds back while there are some.
func (b *Backstore) DemandInFlight() int { return int(b.demand.Load()) }
