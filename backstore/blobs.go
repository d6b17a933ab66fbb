package backstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore/imageref"
	"github.com/dejavu-project/dejavu/backstore/overlaybd"
)

// imageBlobs is an image's layer blobs opened one by one, whether they are
// overlaybd or not: what Inspect and WriteRaw work on. Open, in contrast,
// refuses an image with a layer it cannot serve.
type imageBlobs struct {
	ref      imageref.Ref
	digest   v1.Hash         // manifest digest; zero for file: references
	manifest *v1.Manifest    // nil for file: references
	descs    []v1.Descriptor // only Size and a "path" annotation for files
	blobs    []*overlaybd.Blob
	errs     []error     // per layer: why it is not overlaybd, or nil
	lazy     []*lazyBlob // registry blobs, read by range
	closers  []io.Closer
}

func (ib *imageBlobs) Close() error {
	var errs []error
	for i := len(ib.closers) - 1; i >= 0; i-- {
		errs = append(errs, ib.closers[i].Close())
	}
	return errors.Join(errs...)
}

// overlaybd returns an error naming the first layer that is not overlaybd.
func (ib *imageBlobs) overlaybd() error {
	for i, err := range ib.errs {
		if err != nil {
			return fmt.Errorf("%s: layer %d (%s) is not an overlaybd layer: %w", ib.ref, i, ib.descs[i].Digest, err)
		}
	}
	return nil
}

// openImageBlobs opens the layer blobs of src: a registry image or an OCI
// layout entry, read through a cache (a temporary one unless cfg names
// one), or local blob files.
func openImageBlobs(ctx context.Context, src string, cfg config) (_ *imageBlobs, err error) {
	ref, err := imageref.Parse(src)
	if err != nil {
		return nil, err
	}
	ib := &imageBlobs{ref: ref}
	defer func() {
		if err != nil {
			ib.Close()
		}
	}()
	if ref.Kind == imageref.KindFiles {
		return ib, ib.openFiles()
	}
	if cfg.cacheDir == "" {
		dir, err := os.MkdirTemp("", "dejavu-blobs-")
		if err != nil {
			return nil, err
		}
		ib.closers = append(ib.closers, closerFunc(func() error { return os.RemoveAll(dir) }))
		cfg.cacheDir = dir
	}
	return ib, ib.openImage(ctx, src, cfg)
}

// openFiles opens local blob files, bottom first.
func (ib *imageBlobs) openFiles() error {
	for _, p := range ib.ref.Files {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		ib.closers = append(ib.closers, f)
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		ib.descs = append(ib.descs, v1.Descriptor{Size: fi.Size(), Annotations: map[string]string{"path": p}})
		b, err := overlaybd.OpenBlob(f, fi.Size())
		ib.blobs = append(ib.blobs, b)
		ib.errs = append(ib.errs, err)
	}
	return nil
}

// openImage resolves the image and opens its layer blobs side by side,
// reading by range only what each blob's opening needs.
func (ib *imageBlobs) openImage(ctx context.Context, src string, cfg config) error {
	b, err := newBackstore(src, cfg)
	if err != nil {
		return err
	}
	ib.closers = append(ib.closers, b)
	// Blob reads fetch under the backstore's own context: the caller's
	// ending must stop them too.
	stop := context.AfterFunc(ctx, b.cancel)
	ib.closers = append(ib.closers, closerFunc(func() error { stop(); return nil }))
	if err := b.resolve(ctx, cfg); err != nil {
		return err
	}
	if err := b.attachLayers(cfg); err != nil {
		return err
	}
	ib.digest, ib.manifest, ib.descs = b.digest, b.manifest, b.manifest.Layers
	n := len(b.layers)
	ib.blobs, ib.errs, ib.lazy = make([]*overlaybd.Blob, n), make([]error, n), make([]*lazyBlob, n)
	fatal := make([]error, n)
	var wg sync.WaitGroup
	for i, l := range b.layers {
		ib.lazy[i] = l.lazy
		wg.Go(func() {
			retries := 0
			if overlaybd.IsOverlaybdLayer(l.Descriptor) {
				retries = cfg.checkRetries
			}
			fr := &fileReader{lb: l.lazy}
			ib.blobs[i], ib.errs[i] = openBlob(ctx, l.lazy, fr, nil, retries)
			if err := fr.failure(); err != nil {
				fatal[i] = fmt.Errorf("%s: layer %d (%s): %w", ib.ref, i, l.Descriptor.Digest, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(fatal...)
}

// Whole-blob fetches go a window at a time, a few blobs side by side: a
// fetch holds its window in memory until it is stored, so an image of
// many gigabytes must not be asked for at once.
const (
	fetchWindow = 64 << 20
	fetchLayers = 4
)

// fetchAll fetches every registry blob whole into the cache, as a pull
// does.
func (ib *imageBlobs) fetchAll(ctx context.Context) error {
	if ib.ref.Kind != imageref.KindRegistry {
		return nil // a layout's blobs are local files already
	}
	errs := make([]error, len(ib.lazy))
	sem := make(chan struct{}, fetchLayers)
	var wg sync.WaitGroup
	for i, lb := range ib.lazy {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for off := int64(0); off < lb.size && errs[i] == nil; off += fetchWindow {
				errs[i] = lb.ensure(ctx, off, min(fetchWindow, lb.size-off), CausePrefetch)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fileReader reads a lazy blob as an *os.File reads a file: short at the
// end with io.EOF. It keeps the first failure to fetch, so that a registry
// that cannot be read is an error and not a layer that "is not overlaybd".
type fileReader struct {
	lb  *lazyBlob
	mu  sync.Mutex
	err error
}

func (r *fileReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.lb.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.lb.size-off)
	if _, err := r.lb.ReadAt(p[:n], off); err != nil {
		r.mu.Lock()
		r.err = cmp.Or(r.err, err)
		r.mu.Unlock()
		return 0, err
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

func (r *fileReader) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}
