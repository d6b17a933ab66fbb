package overlaybd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Convert turns an ordinary OCI or Docker image (tar, gzip or zstd layers)
// into an overlaybd image with the runtime config and platform kept.
//
// By default every source layer becomes one overlaybd layer: the layers are
// applied in order to one ext4 file system (made empty under the first) by
// e2fsprogs' debugfs, and each overlaybd layer holds the blocks its source
// layer changed. Layer UUIDs come from the chain IDs, as overlaybd's
// convertor makes them, and times, file system UUID and hash seed are fixed,
// so the same source layer on the same layers below always gives the same
// blob (see WithCacheDir). Source layers are checked against the config's
// diff IDs.
//
// With WithFlatten the layers are applied onto one tree instead, and the
// tree is built into a single layer as Build does.
func Convert(ctx context.Context, src v1.Image, opts ...BuildOption) (*Built, error) {
	cfg := newBuildConfig(opts)
	if _, err := newBlobConfig(cfg.blob); err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	scf, err := src.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("convert: read config: %w", err)
	}
	if cfg.config == nil {
		c := scf.Config
		cfg.config = &c
	}
	if cfg.platform == nil {
		p := v1.Platform{OS: scf.OS, Architecture: scf.Architecture, Variant: scf.Variant, OSVersion: scf.OSVersion}
		cfg.platform = &p
	}
	if err := notConverted(src); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(cfg.workDir, "dejavu-convert-")
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	var b *Built
	if cfg.flatten {
		b, err = convertFlat(ctx, src, cfg, work)
	} else {
		b, err = convertLayers(ctx, src, scf, cfg, work)
	}
	if err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	return b, nil
}

// convertFlat applies all layers to one tree and builds it.
func convertFlat(ctx context.Context, src v1.Image, cfg buildConfig, work string) (*Built, error) {
	layers, err := src.Layers()
	if err != nil {
		return nil, fmt.Errorf("convert: list layers: %w", err)
	}
	rootDir := filepath.Join(work, "rootfs")
	if err := os.Mkdir(rootDir, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(rootDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	for i, l := range layers {
		if err := applyOne(ctx, root, l, cfg.log); err != nil {
			return nil, fmt.Errorf("convert: layer %d: %w", i, err)
		}
	}
	b, err := buildIn(ctx, work, rootDir, cfg, "dejavu image convert")
	if err != nil {
		return nil, err
	}
	// The tree is in the layer now.
	os.RemoveAll(rootDir)
	return b, nil
}

func applyOne(ctx context.Context, root *os.Root, l v1.Layer, log *slog.Logger) error {
	d, err := l.Digest()
	if err != nil {
		return err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("%s: open: %w", d, err)
	}
	defer rc.Close()
	st, err := ApplyLayer(ctx, root, rc, WithApplyLogger(log))
	if err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	log.Debug("applied layer", "digest", d, "stats", st)
	return nil
}

// notConverted refuses an image that is overlaybd already: applied as a
// tar, its layer would be one file, overlaybd.commit.
func notConverted(src v1.Image) error {
	m, err := src.Manifest()
	if err != nil {
		return fmt.Errorf("convert: manifest: %w", err)
	}
	for i, d := range m.Layers {
		if IsOverlaybdLayer(d) {
			return fmt.Errorf("convert: layer %d (%s) is an overlaybd layer already: the image needs no conversion (dejavu image copy copies it)", i, d.Digest)
		}
	}
	return nil
}
