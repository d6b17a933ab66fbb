package backstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/lsmt"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
)

// Layer is one opened layer of the image.
type Layer struct {
	Descriptor v1.Descriptor
	blob       *overlaybd.Blob
	lazy       *lazyBlob
}

// FileRange maps blob bytes [start, end) to the range of the layer's
// uncompressed LSMT file they decode to (what overlaybd's own trace records).
func (l *Layer) FileRange(start, end int64) (off, n int64) { return l.blob.FileRange(start, end) }

// Describe reports how the layer is stored.
func (l *Layer) Describe() overlaybd.LayerReport { return l.blob.Describe() }

// Backstore is an opened image: its merged virtual device, read lazily.
// It is safe for concurrent use.
type Backstore struct {
	ref      imageref.Ref
	digest   v1.Hash
	manifest *v1.Manifest
	config   *v1.ConfigFile
	layers   []*Layer
	dev      *lsmt.Device
	opened   atomic.Bool // dev is set: Open returned it
	cache    *diskCache
	obs      []Observer
	log      *slog.Logger
	life     context.Context // ends at Close: fetches in flight stop
	cancel   context.CancelFunc
	retries  int
	closers  []io.Closer
	demand   *atomic.Int64 // demand fetches in flight
	local    bool          // manifest and config came from the cache
}

// Open resolves ref (a registry reference or an OCI layout), opens the cache
// and every layer's indexes, and returns the image's merged device.
func Open(ctx context.Context, ref string, opts ...Option) (_ *Backstore, err error) {
	cfg := newConfig(opts)
	if cfg.cacheDir == "" {
		cfg.cacheDir = DefaultCacheDir()
	}
	b, err := newBackstore(ref, cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if err := b.resolve(ctx, cfg); err != nil {
		return nil, err
	}
	if err := b.attachLayers(cfg); err != nil {
		return nil, err
	}
	if cfg.fetchable != nil {
		cfg.fetchable(&Fetchable{b: b})
	}
	readers, err := b.openLayers(ctx)
	if err != nil {
		return nil, err
	}
	if err := b.merge(readers); err != nil {
		return nil, err
	}
	return b, nil
}

// newBackstore parses ref and opens the cache: what every later step needs.
func newBackstore(ref string, cfg config) (*Backstore, error) {
	r, err := imageref.Parse(ref)
	if err != nil {
		return nil, err
	}
	if r.Kind == imageref.KindFiles {
		return nil, fmt.Errorf("backstore: %s: open an image from a registry or an OCI layout", ref)
	}
	if cfg.cacheLimit < 0 || cfg.cacheLimit > 0 && cfg.cacheLimit < MinCacheLimit(cfg.unit) {
		return nil, fmt.Errorf("backstore: cache limit of %d bytes: want 0 (no bound) or at least %d bytes (%d fetch units)", cfg.cacheLimit, MinCacheLimit(cfg.unit), minCacheUnits)
	}
	cache, err := openDiskCache(cfg.cacheDir, cfg.unit, cfg.cacheLimit)
	if err != nil {
		return nil, err
	}
	life, cancel := context.WithCancel(context.Background())
	return &Backstore{ref: r, cache: cache, obs: cfg.obs, log: cfg.log, life: life, cancel: cancel,
		retries: cfg.checkRetries, demand: new(atomic.Int64)}, nil
}

// resolve reads the manifest (telling WithResolved's function at once,
// before the config is fetched) and the config.
func (b *Backstore) resolve(ctx context.Context, cfg config) error {
	var told sync.Once
	tell := func(d v1.Hash, raw []byte, local bool) {
		if cfg.resolved == nil {
			return
		}
		told.Do(func() {
			mt := types.OCIManifestSchema1
			if m, err := v1.ParseManifest(bytes.NewReader(raw)); err == nil && m.MediaType != "" {
				mt = m.MediaType
			}
			cfg.resolved(v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}, local)
		})
	}
	img, err := resolve(ctx, b.ref, cfg, tell)
	if err != nil {
		return err
	}
	if b.digest, err = img.Digest(); err != nil {
		return err
	}
	if res, ok := img.(*resolved); ok {
		b.local = res.local
	}
	if b.manifest, err = img.Manifest(); err != nil {
		return fmt.Errorf("backstore: %s: manifest: %w", b.ref, err)
	}
	if cfg.resolved != nil {
		raw, err := img.RawManifest()
		if err != nil {
			return fmt.Errorf("backstore: %s: manifest: %w", b.ref, err)
		}
		tell(b.digest, raw, b.local) // a layout's image, not told yet
	}
	if b.config, err = img.ConfigFile(); err != nil {
		return fmt.Errorf("backstore: %s: config: %w", b.ref, err)
	}
	return b.keepLayers(cfg.layerCount)
}

// keepLayers cuts the manifest to its bottom n layers (0: all).
func (b *Backstore) keepLayers(n int) error {
	switch all := len(b.manifest.Layers); {
	case n < 0 || n > all:
		return fmt.Errorf("backstore: %s: the bottom %d layers asked for, of %d", b.ref, n, all)
	case n == 0 || n == all:
		return nil
	}
	m := *b.manifest
	m.Layers = m.Layers[:n]
	b.manifest = &m
	return nil
}

// attachLayers makes every layer blob readable through the cache; from
// here on its bytes can be fetched.
func (b *Backstore) attachLayers(cfg config) error {
	// Checked before any work that grows with the layers: a manifest is
	// the registry's to write, and no more layers can be merged anyway.
	if n := len(b.manifest.Layers); n > lsmt.MaxLayers {
		return fmt.Errorf("backstore: %s: %d layers; at most %d can be merged", b.ref, n, lsmt.MaxLayers)
	}
	fetchers, err := b.fetchers(b.life, b.ref, cfg)
	if err != nil {
		return err
	}
	for i, d := range b.manifest.Layers {
		cb, err := b.cache.blob(d.Digest, d.Size)
		if err != nil {
			return err
		}
		b.closers = append(b.closers, closerFunc(cb.close))
		lb := &lazyBlob{ctx: b.life, layer: i, digest: d.Digest, size: d.Size, cache: cb, fetch: fetchers[i],
			obs: cfg.obs, inflight: map[int]*call{}, demand: b.demand}
		b.layers = append(b.layers, &Layer{Descriptor: d, lazy: lb})
	}
	return nil
}

// openLayers reads every layer's headers and indexes, side by side: each
// costs a few dependent round trips (header, trailer, index). It returns
// the readers of the layers' uncompressed files.
func (b *Backstore) openLayers(ctx context.Context) ([]io.ReaderAt, error) {
	readers := make([]io.ReaderAt, len(b.layers))
	errs := make([]error, len(b.layers))
	var wg sync.WaitGroup
	for i, l := range b.layers {
		wg.Go(func() {
			blob, err := openLayer(ctx, l.lazy, l.Descriptor, b.retries)
			if err != nil {
				errs[i] = fmt.Errorf("backstore: %s: layer %d (%s): %w", b.ref, i, l.Descriptor.Digest, err)
				return
			}
			l.blob = blob
			var lr io.ReaderAt = io.NewSectionReader(l.lazy, blob.PayloadOffset, blob.PayloadSize)
			if blob.ZFile != nil {
				lr = blob.ZFile
			}
			readers[i] = layerReader{layer: i, r: lr}
		})
	}
	wg.Wait()
	return readers, errors.Join(errs...)
}

// merge stacks the layers' indexes into the device.
func (b *Backstore) merge(readers []io.ReaderAt) error {
	idx := make([][]lsmt.Mapping, len(b.layers))
	for i, l := range b.layers {
		idx[i] = l.blob.Layer.Index()
	}
	merged, err := lsmt.Merge(idx...)
	if err != nil {
		return fmt.Errorf("backstore: %s: %w", b.ref, err)
	}
	top := b.layers[len(b.layers)-1].blob.Layer
	if b.dev, err = lsmt.NewDeviceFromIndex(merged, readers, top.VirtualSize()); err != nil {
		return err
	}
	b.opened.Store(true)
	return nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// ResolvedLocally reports whether the image's manifest and config came from
// the cache: the image was started here before, and asking the registry
// anything (such as for traces) would cost a warm start its offline-ness.
func (b *Backstore) ResolvedLocally() bool { return b.local }

// Ref returns the image reference it was opened with.
func (b *Backstore) Ref() imageref.Ref { return b.ref }

// Size returns the size of the virtual device.
func (b *Backstore) Size() int64 { return b.dev.Size() }

// Digest returns the image manifest digest.
func (b *Backstore) Digest() v1.Hash { return b.digest }

// Manifest returns the image manifest.
func (b *Backstore) Manifest() *v1.Manifest { return b.manifest }

// Config returns the image config.
func (b *Backstore) Config() *v1.ConfigFile { return b.config }

// Layers returns the opened layers, bottom first.
func (b *Backstore) Layers() []*Layer { return b.layers }

// Close stops fetches in flight and releases the cache.
func (b *Backstore) Close() error {
	b.cancel()
	var errs []error
	for _, c := range b.closers {
		errs = append(errs, c.Close())
	}
	b.closers = nil
	return errors.Join(errs...)
}
