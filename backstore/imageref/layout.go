package imageref

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// maxManifestSize bounds the manifests, indexes and configs read whole from
// a layout, so that a hostile layout cannot make a reader allocate what
// its descriptor claims. Registries commonly limit manifests to 4 MiB.
const maxManifestSize = 8 << 20

// A layout is as untrusted as a registry, and go-containerregistry's layout
// reader trusts it: it follows symbolic links out of the layout and never
// checks a blob against its digest. The types below read a layout the way
// a registry client reads a registry: every blob is a regular file of the
// descriptor's size whose SHA-256 is its digest, checked before any byte
// of it is used.

// OpenLayoutBlob opens the blob that d names in the OCI layout at dir, after
// checking that it is a regular file (not a symbolic link) of d's size and
// that its content has d's digest; the file is returned at offset 0. The
// whole file is hashed once, before any byte of it is served: local disk
// is fast, and a blob that is not what its digest says must not be served
// at all. Errors name the digest and quote no bytes of the file.
func OpenLayoutBlob(dir string, d v1.Descriptor) (*os.File, error) {
	f, err := openRegular(dir, d)
	if err != nil {
		return nil, err
	}
	if err := checkDigest(f, d); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return f, nil
}

// openRegular opens d's blob file, refusing a symbolic link, anything but
// a regular file, and a file of another size than d says. O_NONBLOCK keeps
// open(2) of a FIFO planted as a blob from blocking; on the regular file
// that passes the check it changes nothing.
func openRegular(dir string, d v1.Descriptor) (*os.File, error) {
	if d.Digest.Algorithm != "sha256" || len(d.Digest.Hex) != sha256.Size*2 {
		return nil, fmt.Errorf("blob %s: unsupported digest (want sha256)", d.Digest)
	}
	if _, err := hex.DecodeString(d.Digest.Hex); err != nil {
		return nil, fmt.Errorf("blob %s: digest is not hexadecimal", d.Digest)
	}
	f, err := os.OpenFile(filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("blob %s is a symbolic link; a layout's blobs must be regular files", d.Digest)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("blob %s is not a regular file (%s)", d.Digest, fi.Mode().Type())
	}
	if err == nil && fi.Size() != d.Size {
		err = fmt.Errorf("blob %s holds %d bytes, the manifest says %d", d.Digest, fi.Size(), d.Size)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func checkDigest(r io.Reader, d v1.Descriptor) error {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Digest.Hex {
		return fmt.Errorf("blob %s does not match its digest (its content hashes to sha256:%s)", d.Digest, got)
	}
	return nil
}

// layoutBytes reads the small blob d (a manifest, index or config) whole and
// checks it against d's digest.
func layoutBytes(dir string, d v1.Descriptor) ([]byte, error) {
	if d.Size < 0 || d.Size > maxManifestSize {
		return nil, fmt.Errorf("blob %s: size %d is not in [0, %d]", d.Digest, d.Size, maxManifestSize)
	}
	f, err := openRegular(dir, d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, d.Size))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if err := checkDigest(bytes.NewReader(b), d); err != nil {
		return nil, err
	}
	return b, nil
}

// readIndexJSON reads a layout's index.json, which has no digest, as a
// regular file of bounded size.
func readIndexJSON(dir string) (*v1.IndexManifest, error) {
	path := filepath.Join(dir, "index.json")
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("not an OCI image layout: no %s", path)
		}
		return nil, fmt.Errorf("open layout: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open layout: %s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read index.json: %w", err)
	}
	if len(b) > maxManifestSize {
		return nil, fmt.Errorf("read index.json: larger than %d bytes", maxManifestSize)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse index.json: %w", err)
	}
	return im, nil
}

// layoutImage is an image of a layout, its manifest read and checked once.
type layoutImage struct {
	dir  string
	desc v1.Descriptor
	raw  []byte
	m    *v1.Manifest
}

func newLayoutImage(dir string, d v1.Descriptor) (v1.Image, error) {
	raw, err := layoutBytes(dir, d)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", d.Digest, err)
	}
	return partial.CompressedToImage(&layoutImage{dir: dir, desc: d, raw: raw, m: m})
}

func (li *layoutImage) MediaType() (types.MediaType, error) { return li.desc.MediaType, nil }
func (li *layoutImage) RawManifest() ([]byte, error)        { return li.raw, nil }
func (li *layoutImage) RawConfigFile() ([]byte, error)      { return layoutBytes(li.dir, li.m.Config) }

func (li *layoutImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == li.m.Config.Digest {
		return &layoutBlob{dir: li.dir, desc: li.m.Config}, nil
	}
	for _, d := range li.m.Layers {
		if d.Digest == h {
			return &layoutBlob{dir: li.dir, desc: d}, nil
		}
	}
	return nil, fmt.Errorf("blob %s is not in manifest %s", h, li.desc.Digest)
}

// layoutBlob is a layer (or the config) of a layout image; each Compressed
// checks the whole file against the digest before returning it.
type layoutBlob struct {
	dir  string
	desc v1.Descriptor
}

func (b *layoutBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *layoutBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *layoutBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *layoutBlob) Descriptor() (*v1.Descriptor, error) { return &b.desc, nil }
func (b *layoutBlob) Compressed() (io.ReadCloser, error)  { return OpenLayoutBlob(b.dir, b.desc) }
func (b *layoutBlob) Exists() (bool, error)               { return true, nil }

// layoutIndex is an index of a layout, read and checked once.
type layoutIndex struct {
	dir  string
	desc v1.Descriptor
	raw  []byte
	im   *v1.IndexManifest
}

func newLayoutIndex(dir string, d v1.Descriptor) (*layoutIndex, error) {
	raw, err := layoutBytes(dir, d)
	if err != nil {
		return nil, err
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse index %s: %w", d.Digest, err)
	}
	return &layoutIndex{dir: dir, desc: d, raw: raw, im: im}, nil
}

func (ix *layoutIndex) MediaType() (types.MediaType, error)       { return ix.desc.MediaType, nil }
func (ix *layoutIndex) Digest() (v1.Hash, error)                  { return ix.desc.Digest, nil }
func (ix *layoutIndex) Size() (int64, error)                      { return ix.desc.Size, nil }
func (ix *layoutIndex) IndexManifest() (*v1.IndexManifest, error) { return ix.im.DeepCopy(), nil }
func (ix *layoutIndex) RawManifest() ([]byte, error)              { return ix.raw, nil }

func (ix *layoutIndex) child(h v1.Hash) (v1.Descriptor, error) {
	for _, d := range ix.im.Manifests {
		if d.Digest == h {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("manifest %s is not in index %s", h, ix.desc.Digest)
}

func (ix *layoutIndex) Image(h v1.Hash) (v1.Image, error) {
	d, err := ix.child(h)
	if err != nil {
		return nil, err
	}
	return newLayoutImage(ix.dir, d)
}

func (ix *layoutIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	d, err := ix.child(h)
	if err != nil {
		return nil, err
	}
	return newLayoutIndex(ix.dir, d)
}
