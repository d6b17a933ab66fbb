package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
)

// imageLayers is an image's layer blobs opened for reading, bottom first.
// Registry blobs are downloaded whole into a temporary directory; the lazy
// backstore will read them by range instead.
type imageLayers struct {
	Ref      imageref.Ref
	Digest   v1.Hash         // manifest digest; zero for file: references
	Manifest *v1.Manifest    // nil for file: references
	Descs    []v1.Descriptor // one per layer; only Digest/Size known for files
	Blobs    []*overlaybd.Blob
	Errs     []error // per layer: why it is not an overlaybd layer, or nil

	files []*os.File
	tmp   string
}

func (l *imageLayers) Close() error {
	var errs []error
	for _, f := range l.files {
		errs = append(errs, f.Close())
	}
	if l.tmp != "" {
		errs = append(errs, os.RemoveAll(l.tmp))
	}
	return errors.Join(errs...)
}

// Overlaybd returns an error naming the first layer that is not overlaybd.
func (l *imageLayers) Overlaybd() error {
	for i, err := range l.Errs {
		if err != nil {
			return fmt.Errorf("%s: layer %d (%s) is not an overlaybd layer: %w", l.Ref, i, l.Descs[i].Digest, err)
		}
	}
	return nil
}

// openLayers opens the layer blobs of src with the registry flags' options.
func (f *registryFlags) openLayers(ctx context.Context, src string) (*imageLayers, error) {
	opts, err := f.options()
	if err != nil {
		return nil, err
	}
	return openImageLayers(ctx, src, opts)
}

// openImageLayers opens the layer blobs of src: a registry image, an OCI
// layout entry, or local blob files.
func openImageLayers(ctx context.Context, src string, opts []imageref.Option) (_ *imageLayers, err error) {
	ref, err := imageref.Parse(src)
	if err != nil {
		return nil, err
	}
	il := &imageLayers{Ref: ref}
	defer func() {
		if err != nil {
			il.Close()
		}
	}()
	if ref.Kind == imageref.KindFiles {
		for _, p := range ref.Files {
			f, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			il.files = append(il.files, f)
			fi, err := f.Stat()
			if err != nil {
				return nil, err
			}
			il.Descs = append(il.Descs, v1.Descriptor{Size: fi.Size(), Annotations: map[string]string{"path": p}})
			il.add(f, fi.Size())
		}
		return il, nil
	}
	img, err := imageref.Image(ctx, ref, opts...)
	if err != nil {
		return nil, err
	}
	if il.Digest, err = img.Digest(); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if il.Manifest, err = img.Manifest(); err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("%s: layers: %w", ref, err)
	}
	for i, d := range il.Manifest.Layers {
		il.Descs = append(il.Descs, d)
		f, err := il.blobFile(ctx, ref, d, layers[i])
		if err != nil {
			return nil, fmt.Errorf("%s: layer %d (%s): %w", ref, i, d.Digest, err)
		}
		il.add(f, d.Size)
	}
	return il, nil
}

func (il *imageLayers) add(f *os.File, size int64) {
	b, err := overlaybd.OpenBlob(f, size)
	il.Blobs = append(il.Blobs, b)
	il.Errs = append(il.Errs, err)
}

// blobFile returns the layer blob as a local file: the layout's own blob
// file, or a download of the registry blob.
func (il *imageLayers) blobFile(ctx context.Context, ref imageref.Ref, d v1.Descriptor, l v1.Layer) (*os.File, error) {
	if ref.Kind == imageref.KindLayout {
		f, err := os.Open(filepath.Join(ref.Dir, "blobs", d.Digest.Algorithm, d.Digest.Hex))
		if err != nil {
			return nil, err
		}
		il.files = append(il.files, f)
		return f, nil
	}
	if il.tmp == "" {
		dir, err := os.MkdirTemp("", "dejavu-blobs-")
		if err != nil {
			return nil, err
		}
		il.tmp = dir
	}
	f, err := os.Create(filepath.Join(il.tmp, d.Digest.Hex))
	if err != nil {
		return nil, err
	}
	il.files = append(il.files, f)
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	defer rc.Close()
	n, err := io.Copy(f, &ctxReader{ctx: ctx, r: rc})
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if n != d.Size {
		return nil, fmt.Errorf("fetch: got %d bytes, the manifest says %d", n, d.Size)
	}
	return f, nil
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
