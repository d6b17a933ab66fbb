package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// diskBlobs is go-containerregistry's disk blob store whose uploads leave
// nothing behind when they fail: a client that goes away mid-upload or a
// body that does not match its digest would otherwise leave an upload-*
// file in the store for ever.
type diskBlobs struct {
	ggcr.BlobHandler
	dir string
}

func newDiskBlobs(dir string) (diskBlobs, error) {
	// Uploads cut short by a crash: none is in progress before we serve.
	stale, err := filepath.Glob(filepath.Join(dir, "upload-*"))
	if err != nil {
		return diskBlobs{}, err
	}
	for _, f := range stale {
		os.Remove(f)
	}
	return diskBlobs{BlobHandler: ggcr.NewDiskBlobHandler(dir), dir: dir}, nil
}

func (d diskBlobs) Stat(ctx context.Context, repo string, h v1.Hash) (int64, error) {
	return d.BlobHandler.(ggcr.BlobStatHandler).Stat(ctx, repo, h)
}

func (d diskBlobs) Delete(ctx context.Context, repo string, h v1.Hash) error {
	return d.BlobHandler.(ggcr.BlobDeleteHandler).Delete(ctx, repo, h)
}

// Put writes the blob to a temporary file beside the store, verified as
// it is read, and renames it into place; on any failure the file goes.
// It is go-containerregistry's disk Put (same temporary names, same blob
// paths, which Get and Stat read) plus that removal.
func (d diskBlobs) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) (err error) {
	f, err := os.CreateTemp(d.dir, "upload-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(d.dir, h.Algorithm), 0o755); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(d.dir, h.Algorithm, h.Hex))
}

// validManifest refuses a manifest write that is not a manifest or an
// index of the media type it is sent as: go-containerregistry's registry
// stores any bytes, and readers would fail on them later, far from the
// push that wrote them.
func validManifest(contentType string, b []byte) error {
	switch mt := types.MediaType(contentType); {
	case mt.IsIndex():
		idx, err := v1.ParseIndexManifest(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("index: %w", err)
		}
		if idx.SchemaVersion != 2 {
			return fmt.Errorf("index: schemaVersion %d, want 2", idx.SchemaVersion)
		}
	case mt.IsImage():
		m, err := v1.ParseManifest(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
		if m.SchemaVersion != 2 {
			return fmt.Errorf("manifest: schemaVersion %d, want 2", m.SchemaVersion)
		}
		if m.Config.Digest.Hex == "" {
			return errors.New("manifest: no config descriptor")
		}
	default:
		return fmt.Errorf("media type %q is not an OCI or Docker manifest or index", contentType)
	}
	return nil
}
