package overlaybd

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
)

// BuildOption configures Build and Convert.
type BuildOption func(*buildConfig)

type buildConfig struct {
	size     int64
	blob     []BlobOption
	config   *v1.Config
	platform *v1.Platform
	workDir  string
	log      *slog.Logger
	flatten  bool
	cacheDir string
}

// WithSize sets the size of the file system and virtual device; by default
// Build and a flattening Convert choose it from the content, and a layered
// Convert makes DefaultLayeredSize.
func WithSize(n int64) BuildOption { return func(c *buildConfig) { c.size = n } }

// WithBlobOptions sets how the layer blob is written (compression, block
// size, tar wrapper).
func WithBlobOptions(o ...BlobOption) BuildOption {
	return func(c *buildConfig) { c.blob = append(c.blob, o...) }
}

// WithConfig sets the image's runtime config (Env, Entrypoint, Cmd, ...).
func WithConfig(cfg v1.Config) BuildOption { return func(c *buildConfig) { c.config = &cfg } }

// WithPlatform sets the image's platform (default: this machine's).
func WithPlatform(p v1.Platform) BuildOption { return func(c *buildConfig) { c.platform = &p } }

// WithWorkDir sets where temporary files go (default: the system's).
func WithWorkDir(dir string) BuildOption { return func(c *buildConfig) { c.workDir = dir } }

// WithBuildLogger sets the logger for progress messages (default: none).
func WithBuildLogger(l *slog.Logger) BuildOption { return func(c *buildConfig) { c.log = l } }

// WithFlatten makes Convert apply all source layers to one tree and build
// it into a single overlaybd layer, as Build does, instead of converting
// each source layer into a layer of its own (the default).
func WithFlatten(on bool) BuildOption { return func(c *buildConfig) { c.flatten = on } }

// WithCacheDir keeps converted layers in dir and takes them from there when
// the same source layer comes again on the same layers below (same chain
// ID) with the same settings (default: no cache). Layered Convert only.
func WithCacheDir(dir string) BuildOption { return func(c *buildConfig) { c.cacheDir = dir } }

func newBuildConfig(opts []BuildOption) buildConfig {
	cfg := buildConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Built is a built image whose layer blobs live in a temporary directory
// (or the conversion cache) until Close.
type Built struct {
	Image       v1.Image
	LayerPath   string   // the top layer's blob
	LayerPaths  []string // every layer's blob, bottom first
	VirtualSize int64
	Stats       ConvertStats // what a layered Convert did
	dir         string
}

// Close removes the temporary files.
func (b *Built) Close() error { return os.RemoveAll(b.dir) }

// Build turns the directory tree at dir into a one-layer overlaybd image:
// dir → ext4 (mke2fs -d) → sealed LSMT layer → ZFile → tar wrapper.
func Build(ctx context.Context, dir string, opts ...BuildOption) (*Built, error) {
	cfg := newBuildConfig(opts)
	if _, err := newBlobConfig(cfg.blob); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("build: %s is not a directory", dir)
	}
	work, err := os.MkdirTemp(cfg.workDir, "dejavu-build-")
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	b, err := buildIn(ctx, work, dir, cfg, "dejavu image build")
	if err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	return b, nil
}

func buildIn(ctx context.Context, work, dir string, cfg buildConfig, createdBy string) (*Built, error) {
	raw := filepath.Join(work, "rootfs.ext4")
	size, err := makeExt4(ctx, dir, raw, cfg.size, cfg.log)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	cfg.log.Debug("built ext4", "dir", dir, "size", size)
	f, err := os.Open(raw)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ext, vsize, err := DataExtents(f)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	layerPath := filepath.Join(work, "layer.blob")
	out, err := os.Create(layerPath)
	if err != nil {
		return nil, err
	}
	blobOpts := append([]BlobOption{WithLayerOptions(lsmt.WithUUID(newUUID()))}, cfg.blob...)
	n, err := WriteBlob(out, f, ext, vsize, blobOpts...)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("build: write layer: %w", err)
	}
	cfg.log.Debug("wrote layer blob", "path", layerPath, "bytes", n, "extents", len(ext))
	// The raw image is no longer needed: free the space early.
	os.Remove(raw)
	rc := v1.Config{}
	if cfg.config != nil {
		rc = *cfg.config
	}
	plat := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if cfg.platform != nil {
		plat = *cfg.platform
	}
	img, err := NewImage(layerPath, rc, plat, createdBy)
	if err != nil {
		return nil, err
	}
	return &Built{Image: img, LayerPath: layerPath, LayerPaths: []string{layerPath}, VirtualSize: vsize,
		Stats: ConvertStats{Layers: 1, Converted: 1}, dir: work}, nil
}

// newUUID returns a random RFC 4122 version 4 UUID, as overlaybd names layers.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
