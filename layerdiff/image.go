package layerdiff

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Built is an image whose layers live in a temporary directory until
// Close.
type Built struct {
	Image  v1.Image
	Layers []Stats
	dir    string
}

// Close removes the layers' files.
func (b *Built) Close() error { return os.RemoveAll(b.dir) }

// Option configures Image.
type Option func(*config)

type config struct {
	workDir string
	log     *slog.Logger
	created time.Time
}

// WithWorkDir sets where the layers' files go (default: the system's
// temporary directory).
func WithWorkDir(dir string) Option { return func(c *config) { c.workDir = dir } }

// WithLogger logs each layer as it is made (default: nothing).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithCreated sets the image's creation time (default: the Unix epoch, so
// that the same trees make the same image).
func WithCreated(t time.Time) Option { return func(c *config) { c.created = t } }

// Image builds an OCI image of gzip layers from snapshots of a tree, one
// layer per snapshot: the first is the whole of dirs[0], each next one what
// changed since the one before. cfg and platform go into its config.
func Image(ctx context.Context, dirs []string, cfg v1.Config, platform v1.Platform, opts ...Option) (*Built, error) {
	c := config{log: slog.New(slog.DiscardHandler), created: time.Unix(0, 0).UTC()}
	for _, o := range opts {
		o(&c)
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("layerdiff: no tree to build")
	}
	dir, err := os.MkdirTemp(c.workDir, "dejavu-layers-")
	if err != nil {
		return nil, fmt.Errorf("layerdiff: %w", err)
	}
	b := &Built{dir: dir}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	lower := filepath.Join(dir, "empty")
	if err := os.Mkdir(lower, 0o755); err != nil {
		b.Close()
		return nil, fmt.Errorf("layerdiff: %w", err)
	}
	for i, upper := range dirs {
		l, st, err := layer(ctx, lower, upper, filepath.Join(dir, fmt.Sprintf("layer-%d.tar", i)))
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("layerdiff: layer %d (%s): %w", i, upper, err)
		}
		c.log.Info("layer made", "layer", i, "tree", upper, "entries", st.Entries, "whiteouts", st.Whiteouts, "bytes", st.Bytes)
		b.Layers = append(b.Layers, st)
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.OCILayer,
			History: v1.History{Created: v1.Time{Time: c.created}, CreatedBy: "dejavu image layers: " + filepath.Base(upper)}})
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("layerdiff: %w", err)
		}
		lower = upper
	}
	if b.Image, err = withConfig(img, cfg, platform, c.created); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// layer writes the difference to a tar file and returns it as a gzip layer.
func layer(ctx context.Context, lower, upper, path string) (v1.Layer, Stats, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, Stats{}, err
	}
	st, err := Diff(ctx, lower, upper, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, st, err
	}
	l, err := tarball.LayerFromFile(path, tarball.WithMediaType(types.OCILayer))
	return l, st, err
}

func withConfig(img v1.Image, cfg v1.Config, platform v1.Platform, created time.Time) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("layerdiff: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Config, cf.Created = cfg, v1.Time{Time: created}
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = platform.OS, platform.Architecture, platform.Variant, platform.OSVersion
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("layerdiff: %w", err)
	}
	return img, nil
}
