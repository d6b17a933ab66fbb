package overlaybd

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Layer annotations that mark an overlaybd layer in a manifest.
const (
	AnnotationBlobDigest = "containerd.io/snapshot/overlaybd/blob-digest"
	AnnotationBlobSize   = "containerd.io/snapshot/overlaybd/blob-size"
	AnnotationVersion    = "containerd.io/snapshot/overlaybd/version"
	// LayerVersion is the value of AnnotationVersion that overlaybd writes.
	LayerVersion = "0.1.0"
)

// LayerMediaType is the media type overlaybd gives its tar-wrapped layers.
const LayerMediaType = types.OCIUncompressedLayer

// IsOverlaybdLayer reports whether a manifest layer descriptor carries the
// overlaybd annotations.
func IsOverlaybdLayer(d v1.Descriptor) bool {
	_, ok := d.Annotations[AnnotationBlobDigest]
	return ok
}

// fileLayer is a v1.Layer over a local blob file, served unchanged: an
// overlaybd layer is stored as it is, so its digest is also its diff ID.
type fileLayer struct {
	path string
	mt   types.MediaType
	once sync.Once
	hash v1.Hash
	size int64
	err  error
}

func (l *fileLayer) digest() (v1.Hash, int64, error) {
	l.once.Do(func() {
		f, err := os.Open(l.path)
		if err != nil {
			l.err = err
			return
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			l.err = fmt.Errorf("hash %s: %w", l.path, err)
			return
		}
		l.hash = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
		l.size = n
	})
	return l.hash, l.size, l.err
}

func (l *fileLayer) Digest() (v1.Hash, error)             { h, _, err := l.digest(); return h, err }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.Digest() }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *fileLayer) Size() (int64, error)                 { _, n, err := l.digest(); return n, err }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return l.mt, nil }

// overlaybdLayer is the manifest entry of a layer blob at path.
func overlaybdLayer(path string, history v1.History) (mutate.Addendum, error) {
	a, err := Addendum(&fileLayer{path: path, mt: LayerMediaType})
	a.History = history
	return a, err
}

// Addendum is the manifest entry of an overlaybd layer blob: its media
// type and the overlaybd annotations that mark it, for mutate.Append.
func Addendum(l v1.Layer) (mutate.Addendum, error) {
	h, err := l.Digest()
	if err != nil {
		return mutate.Addendum{}, err
	}
	size, err := l.Size()
	if err != nil {
		return mutate.Addendum{}, err
	}
	return mutate.Addendum{
		Layer:     l,
		MediaType: LayerMediaType,
		Annotations: map[string]string{
			AnnotationBlobDigest: h.String(),
			AnnotationBlobSize:   strconv.FormatInt(size, 10),
			AnnotationVersion:    LayerVersion,
		},
	}, nil
}

// newLayeredImage makes an overlaybd image of the layer blobs at paths,
// bottom first, with the source's config: runtime config, platform and
// creation time (not the clock's, so that converting again gives the same
// digest), unless cfg overrides them.
func newLayeredImage(paths []string, src *v1.ConfigFile, cfg buildConfig) (v1.Image, error) {
	adds := make([]mutate.Addendum, len(paths))
	for i, p := range paths {
		a, err := overlaybdLayer(p, v1.History{Created: src.Created, CreatedBy: fmt.Sprintf("dejavu image convert: layer %d", i)})
		if err != nil {
			return nil, err
		}
		adds[i] = a
	}
	rc := src.Config
	if cfg.config != nil {
		rc = *cfg.config
	}
	plat := v1.Platform{Architecture: src.Architecture, OS: src.OS, Variant: src.Variant, OSVersion: src.OSVersion}
	if cfg.platform != nil {
		plat = *cfg.platform
	}
	return assemble(adds, rc, plat, src.Created)
}

// NewImage makes a one-layer overlaybd image from the layer blob at path:
// an OCI manifest whose layer carries the overlaybd annotations, and an OCI
// config with the given runtime config and platform. createdBy goes into the
// history.
func NewImage(path string, cfg v1.Config, platform v1.Platform, createdBy string) (v1.Image, error) {
	now := v1.Time{Time: time.Now().UTC().Truncate(time.Second)}
	add, err := overlaybdLayer(path, v1.History{Created: now, CreatedBy: createdBy})
	if err != nil {
		return nil, err
	}
	return assemble([]mutate.Addendum{add}, cfg, platform, now)
}

// assemble makes an OCI image of the layers with the given runtime config,
// platform and creation time.
func assemble(adds []mutate.Addendum, cfg v1.Config, platform v1.Platform, created v1.Time) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("assemble image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.Created = created
	cf.Architecture, cf.OS, cf.Variant, cf.OSVersion = platform.Architecture, platform.OS, platform.Variant, platform.OSVersion
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("assemble image config: %w", err)
	}
	return img, nil
}
