package backstore

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
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

// Fetchable is an image that Open is still opening but whose layer bytes
// can already be fetched: what a prefetch needs to start while Open reads
// the layers' indexes. WithFetchable hands it out.
type Fetchable struct{ b *Backstore }

// Layers returns the descriptors of the image's layers, bottom first.
func (f *Fetchable) Layers() []v1.Descriptor { return f.b.manifest.Layers }

// Prefetch is Backstore.Prefetch.
func (f *Fetchable) Prefetch(ctx context.Context, layer int, off, n int64) error {
	return f.b.Prefetch(ctx, layer, off, n)
}

// PrefetchExact is Backstore.PrefetchExact.
func (f *Fetchable) PrefetchExact(ctx context.Context, layer int, ranges []Extent) error {
	return f.b.PrefetchExact(ctx, layer, ranges)
}

// Held is Backstore.Held.
func (f *Fetchable) Held(layer int, off, n int64) bool { return f.b.Held(layer, off, n) }

// DemandInFlight is Backstore.DemandInFlight.
func (f *Fetchable) DemandInFlight() int { return f.b.DemandInFlight() }

// BlobRanges is Backstore.BlobRanges once Open has returned the image, and
// nil before: until then nothing reads the device.
func (f *Fetchable) BlobRanges(off, n int64) []BlobRange {
	if !f.b.opened.Load() {
		return nil
	}
	return f.b.BlobRanges(off, n)
}
