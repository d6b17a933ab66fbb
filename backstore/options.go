package backstore

import (
	"log/slog"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore/imageref"
)

// DefaultFetchUnit is the granularity of fetching and caching: 256 KiB. A
// miss costs a round trip; at a typical link to a registry (tens of ms,
// around 100 Mbit/s) moving 256 KiB costs about as long as asking for it, so
// a smaller unit wastes round trips on neighbouring misses and a larger one
// makes every miss slower without saving many.
const DefaultFetchUnit = 256 << 10

// Option configures Open, Inspect and WriteRaw.
type Option func(*config)

type config struct {
	cacheDir     string
	cacheLimit   int64
	unit         int64
	obs          []Observer
	refOpts      []imageref.Option
	retry        retryPolicy
	log          *slog.Logger
	checkRetries int
	resolved     func(v1.Descriptor, bool)
	fetchable    func(*Fetchable)
	layerCount   int
}

func newConfig(opts []Option) config {
	cfg := config{unit: DefaultFetchUnit, retry: defaultRetry(), checkRetries: 3}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// WithCacheDir sets the persistent cache directory (default for Open:
// DefaultCacheDir; for Inspect and WriteRaw: a temporary directory removed
// when they return).
func WithCacheDir(dir string) Option { return func(c *config) { c.cacheDir = dir } }

// WithLayerCount opens only the bottom n layers of the image: the file
// system of the image it was built on, when that image's layers are its
// first ones (a base image and an application image on it share them, and
// a host may hold the snapshot of either). 0, the default, opens them all.
func WithLayerCount(n int) Option { return func(c *config) { c.layerCount = n } }

// WithCacheLimit bounds the cache in bytes (0, the default: no bound). A
// bound below MinCacheLimit of the fetch unit is refused by Open.
func WithCacheLimit(n int64) Option { return func(c *config) { c.cacheLimit = n } }

// minCacheUnits is how many fetch units a bounded cache holds at least.
// A demand read fetches whole units into the cache and then reads them
// from it; a cache that cannot hold the units of the reads in flight (FUSE
// issues several at once, and eviction frees down to 90% of the bound)
// evicts a unit before its reader gets to it, and the read fails with
// "keep being evicted".
const minCacheUnits = 16

// MinCacheLimit is the smallest cache bound Open accepts with fetch unit
// unit: 16 units (4 MiB at DefaultFetchUnit). A prefetcher's requests in
// flight come on top of it; callers that run one should allow for them.
func MinCacheLimit(unit int64) int64 { return minCacheUnits * unit }

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
// while Open goes on.
func WithFetchable(f func(*Fetchable)) Option { return func(c *config) { c.fetchable = f } }

// WithChecksumRetries sets how often a block that fails its checksum is
// fetched again before reads of it fail with ErrCorrupt (default 3).
func WithChecksumRetries(n int) Option { return func(c *config) { c.checkRetries = max(n, 0) } }

// WithRetry sets how blob fetches are retried: tries in all and how long an
// attempt may receive nothing before it is abandoned.
func WithRetry(attempts int, idle time.Duration) Option {
	return func(c *config) { c.retry.attempts, c.retry.idleTimeout = max(attempts, 1), idle }
}

// WithLogger sets the logger for retries, refetches and cache trouble
// (default: none).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// DefaultCacheDir is where Open's cache lives unless WithCacheDir says
// otherwise.
func DefaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "dejavu")
	}
	return filepath.Join(os.TempDir(), "dejavu-cache")
}
