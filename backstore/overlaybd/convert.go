package overlaybd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Convert turns an ordinary OCI or Docker image into a one-layer overlaybd
// image: its layers are applied in order onto an empty tree (whiteouts
// honoured), and the tree is built as Build does. The runtime config and
// platform are kept.
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
	layers, err := src.Layers()
	if err != nil {
		return nil, fmt.Errorf("convert: list layers: %w", err)
	}
	work, err := os.MkdirTemp(cfg.workDir, "dejavu-convert-")
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(work)
		}
	}()
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
	ok = true
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
