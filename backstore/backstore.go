package backstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/lsmt"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/backstore/zfile"
)

// DefaultFetchUnit is the granularity of fetching and caching: 256 KiB. A
// miss costs a round trip; at a typical link to a registry (tens of ms,
// around 100 Mbit/s) moving 256 KiB costs about as long as asking for it, so
// a smaller unit wastes round trips on neighbouring misses and a larger one
// makes every miss slower without saving many.
const DefaultFetchUnit = 256 << 10

// Option configures Open.
type Option func(*config)

type config struct {
	cacheDir     string
	cacheLimit   int64
	unit         int64
	obs          []Observer
	refOpts      []imageref.Option
	transport    http.RoundTripper
	retry        retryPolicy
	log          *slog.Logger
	checkRetries int
	resolved     func(v1.Descriptor, bool)
	fetchable    func(*Backstore)
}

// WithCacheDir sets the persistent cache directory (default: a directory
// under the user's cache directory).
func WithCacheDir(dir string) Option { return func(c *config) { c.cacheDir = dir } }

// WithCacheLimit bounds the cache in bytes (0: no bound).
func WithCacheLimit(n int64) Option { return func(c *config) { c.cacheLimit = n } }

// WithFetchUnit sets the fetch and cache unit (a multiple of 4 KiB).
func WithFetchUnit(n int64) Option { return func(c *config) { c.unit = n } }

// WithObserver adds an observer of reads and fetches.
func WithObserver(o Observer) Option { return func(c *config) { c.obs = append(c.obs, o) } }

// WithRefOptions passes options for resolving the image (insecure registries,
// platform, credentials).
func WithRefOptions(o ...imageref.Option) Option {
	return func(c *config) { c.refOpts = append(c.refOpts, o...) }
}

// WithResolved registers a function called as soon as the image manifest is
// resolved, before the layers' headers and indexes are read, with the
// manifest's descriptor and whether it came from the local cache. It lets
// a caller start work that needs only the image digest (finding its trace)
// while Open goes on.
func WithResolved(f func(manifest v1.Descriptor, local bool)) Option {
	return func(c *config) { c.resolved = f }
}

// WithFetchable registers a function called once the layers' bytes can be
// fetched, before their indexes are read, so that a prefetch can start
// while Open goes on. Until Open returns, only Manifest, Layers, Prefetch,
// PrefetchExact, Held and DemandInFlight may be used.
func WithFetchable(f func(*Backstore)) Option { return func(c *config) { c.fetchable = f } }

// WithChecksumRetries sets how often a block that fails its checksum is
// fetched again before reads of it fail with ErrCorrupt (default 3).
func WithChecksumRetries(n int) Option { return func(c *config) { c.checkRetries = max(n, 0) } }

// WithRetry sets how blob fetches are retried: tries in all and how long an
// attempt may receive nothing before it is abandoned.
func WithRetry(attempts int, idle time.Duration) Option {
	return func(c *config) { c.retry.attempts, c.retry.idleTimeout = max(attempts, 1), idle }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// DefaultCacheDir is where the cache lives unless WithCacheDir says otherwise.
func DefaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "dejavu")
	}
	return filepath.Join(os.TempDir(), "dejavu-cache")
}

// Layer is one opened layer of the image.
type Layer struct {
	Descriptor v1.Descriptor
	Blob       *overlaybd.Blob
	lazy       *lazyBlob
}

// Backstore is an opened image: its merged virtual device, read lazily.
// It is safe for concurrent use.
type Backstore struct {
	ref      imageref.Ref
	digest   v1.Hash
	manifest *v1.Manifest
	config   *v1.ConfigFile
	layers   []*Layer
	dev      *lsmt.Device
	cache    *Cache
	obs      []Observer
	cancel   context.CancelFunc
	retries  int
	closers  []io.Closer
	demand   *atomic.Int64 // demand fetches in flight
	local    bool          // manifest and config came from the cache
}

// Open resolves ref (a registry reference or an OCI layout), opens the cache
// and every layer's indexes, and returns the image's merged device.
func Open(ctx context.Context, ref string, opts ...Option) (_ *Backstore, err error) {
	cfg := config{unit: DefaultFetchUnit, retry: defaultRetry(), log: slog.Default(), checkRetries: 3}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.cacheDir == "" {
		cfg.cacheDir = DefaultCacheDir()
	}
	r, err := imageref.Parse(ref)
	if err != nil {
		return nil, err
	}
	if r.Kind == imageref.KindFiles {
		return nil, fmt.Errorf("backstore: %s: open an image from a registry or an OCI layout", ref)
	}
	cache, err := OpenCache(cfg.cacheDir, cfg.unit, cfg.cacheLimit)
	if err != nil {
		return nil, err
	}
	life, cancel := context.WithCancel(context.Background())
	b := &Backstore{ref: r, cache: cache, obs: cfg.obs, cancel: cancel, retries: cfg.checkRetries, demand: new(atomic.Int64)}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	img, err := resolve(ctx, r, cfg)
	if err != nil {
		return nil, err
	}
	if b.digest, err = img.Digest(); err != nil {
		return nil, err
	}
	if res, ok := img.(*resolved); ok {
		b.local = res.local
	}
	if b.manifest, err = img.Manifest(); err != nil {
		return nil, fmt.Errorf("backstore: %s: manifest: %w", r, err)
	}
	if cfg.resolved != nil {
		raw, err := img.RawManifest()
		if err != nil {
			return nil, fmt.Errorf("backstore: %s: manifest: %w", r, err)
		}
		mt := b.manifest.MediaType
		if mt == "" {
			mt = types.OCIManifestSchema1
		}
		cfg.resolved(v1.Descriptor{MediaType: mt, Digest: b.digest, Size: int64(len(raw))}, b.local)
	}
	if b.config, err = img.ConfigFile(); err != nil {
		return nil, fmt.Errorf("backstore: %s: config: %w", r, err)
	}
	fetchers, err := b.fetchers(life, r, cfg)
	if err != nil {
		return nil, err
	}
	for i, d := range b.manifest.Layers {
		cb, err := cache.blob(d.Digest, d.Size)
		if err != nil {
			return nil, err
		}
		b.closers = append(b.closers, closerFunc(cb.close))
		lb := &lazyBlob{ctx: life, layer: i, digest: d.Digest, size: d.Size, cache: cb, fetch: fetchers[i], obs: cfg.obs, inflight: map[int]*call{}, demand: b.demand}
		b.layers = append(b.layers, &Layer{Descriptor: d, lazy: lb})
	}
	if cfg.fetchable != nil {
		cfg.fetchable(b)
	}
	// Layers are opened side by side: each costs a few dependent round
	// trips (header, trailer, index).
	readers := make([]io.ReaderAt, len(b.layers))
	errs := make([]error, len(b.layers))
	var wg sync.WaitGroup
	for i, l := range b.layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			blob, err := openLayer(ctx, l.lazy, l.Descriptor, cfg.checkRetries)
			if err != nil {
				errs[i] = fmt.Errorf("backstore: %s: layer %d (%s): %w", r, i, l.Descriptor.Digest, err)
				return
			}
			l.Blob = blob
			var lr io.ReaderAt = io.NewSectionReader(l.lazy, blob.PayloadOffset, blob.PayloadSize)
			if blob.ZFile != nil {
				lr = blob.ZFile
			}
			readers[i] = layerReader{layer: i, r: lr}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	idx := make([][]lsmt.Mapping, len(b.layers))
	for i, l := range b.layers {
		idx[i] = l.Blob.Layer.Index()
	}
	merged, err := lsmt.Merge(idx...)
	if err != nil {
		return nil, fmt.Errorf("backstore: %s: %w", r, err)
	}
	top := b.layers[len(b.layers)-1].Blob.Layer
	if b.dev, err = lsmt.NewDeviceFromIndex(merged, readers, top.VirtualSize()); err != nil {
		return nil, err
	}
	return b, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// openLayer opens a layer blob through the cache; headers or indexes that
// fail their checksums are dropped and fetched again.
func openLayer(ctx context.Context, lb *lazyBlob, d v1.Descriptor, retries int) (*overlaybd.Blob, error) {
	if !overlaybd.IsOverlaybdLayer(d) {
		return nil, fmt.Errorf("not an overlaybd layer (no %s annotation); convert the image with dejavu image convert", overlaybd.AnnotationBlobDigest)
	}
	var err error
	for try := 0; try <= retries; try++ {
		rec := &recordingReader{lb: lb}
		rec.recording.Store(true)
		var blob *overlaybd.Blob
		blob, err = overlaybd.OpenBlob(rec, d.Size)
		// The opened blob keeps reading through rec: stop recording.
		rec.recording.Store(false)
		if err == nil {
			return blob, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Whatever was read may be what is wrong: drop it and try again.
		for _, r := range rec.ranges {
			lb.dropRange(r[0], r[1])
		}
	}
	return nil, err
}

// recordingReader notes the ranges read through it while recording.
type recordingReader struct {
	lb        *lazyBlob
	recording atomic.Bool
	mu        sync.Mutex
	ranges    [][2]int64
}

func (r *recordingReader) ReadAt(p []byte, off int64) (int, error) {
	if r.recording.Load() {
		r.mu.Lock()
		r.ranges = append(r.ranges, [2]int64{off, off + int64(len(p))})
		r.mu.Unlock()
	}
	return r.lb.ReadAt(p, off)
}

// layerReader tags checksum failures with the layer they happened in.
type layerReader struct {
	layer int
	r     io.ReaderAt
}

type blockFault struct {
	layer      int
	start, end int64 // payload coordinates
	err        error
}

func (e *blockFault) Error() string { return fmt.Sprintf("layer %d: %v", e.layer, e.err) }
func (e *blockFault) Unwrap() error { return e.err }

func (l layerReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := l.r.ReadAt(p, off)
	var be *zfile.BlockError
	if err != nil && errors.As(err, &be) {
		err = &blockFault{layer: l.layer, start: be.Start, end: be.End, err: err}
	}
	return n, err
}

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

// Device returns the merged device (its index maps device sectors to layers).
func (b *Backstore) Device() *lsmt.Device { return b.dev }

// ErrCorrupt is returned when a range keeps failing its checksum after it
// was fetched again.
var ErrCorrupt = errors.New("data keeps failing its checksum after refetching")

// ReadAt reads the virtual device.
func (b *Backstore) ReadAt(p []byte, off int64) (int, error) {
	if len(b.obs) == 0 {
		return b.readAt(p, off)
	}
	start := time.Now()
	cached := b.Cached(off, int64(len(p)))
	n, err := b.readAt(p, off)
	ev := DeviceRead{Offset: off, Length: int64(len(p)), Start: start, Latency: time.Since(start), Cached: cached, Err: err}
	for _, o := range b.obs {
		o.DeviceRead(ev)
	}
	return n, err
}

func (b *Backstore) readAt(p []byte, off int64) (int, error) {
	// Retries are counted per block: a read spanning many blocks that a
	// bad disk or link corrupted repairs them one after another, while a
	// block that stays bad after its retries is an error.
	var fails map[[2]int64]int // made on the first fault: reads are the hot path
	for try := 0; ; try++ {
		n, err := b.dev.ReadAt(p, off)
		var bf *blockFault
		if err == nil || !errors.As(err, &bf) {
			return n, err
		}
		if fails == nil {
			fails = map[[2]int64]int{}
		}
		key := [2]int64{int64(bf.layer), bf.start}
		if fails[key]++; fails[key] > b.retries || try >= maxRepairs {
			return n, fmt.Errorf("backstore: device bytes %d+%d: %w: %v", off, len(p), ErrCorrupt, err)
		}
		l := b.layers[bf.layer]
		slogDebugDrop(bf, l)
		if derr := l.lazy.dropRange(l.Blob.PayloadOffset+bf.start, l.Blob.PayloadOffset+bf.end); derr != nil {
			return n, derr
		}
	}
}

// maxRepairs bounds the refetches of one read, whatever blocks fail.
const maxRepairs = 256

func slogDebugDrop(bf *blockFault, l *Layer) {
	slog.Debug("backstore: checksum failure, refetching", "layer", bf.layer, "digest", l.Descriptor.Digest, "start", bf.start, "end", bf.end)
}

// BlobRange is a byte range of a layer blob.
type BlobRange struct {
	Layer      int
	Start, End int64
}

// BlobRanges maps device bytes [off, off+n) to the layer blob ranges that
// hold them (what a range request would fetch), in device order.
func (b *Backstore) BlobRanges(off, n int64) []BlobRange {
	if off < 0 || n <= 0 || off >= b.Size() {
		return nil
	}
	n = min(n, b.Size()-off)
	start := uint64(off) / lsmt.SectorSize
	end := (uint64(off+n) + lsmt.SectorSize - 1) / lsmt.SectorSize
	var out []BlobRange
	var buf [16]lsmt.Mapping
	for _, m := range b.dev.Index().Lookup(buf[:0], start, end) {
		if m.Zeroed {
			continue
		}
		l := b.layers[m.Tag]
		s, e := l.Blob.BlobRange(int64(m.MOffset)*lsmt.SectorSize, int64(m.Length)*lsmt.SectorSize)
		if s < e {
			out = append(out, BlobRange{Layer: int(m.Tag), Start: s, End: e})
		}
	}
	return out
}

// Cached reports whether every blob byte that device bytes [off, off+n)
// need is in the cache.
func (b *Backstore) Cached(off, n int64) bool {
	for _, r := range b.BlobRanges(off, n) {
		if !b.layers[r.Layer].lazy.held(r.Start, r.End-r.Start) {
			return false
		}
	}
	return true
}

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
