package backstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/backstore/zfile"
)

// openLayer opens a layer blob through the cache; headers or indexes that
// fail their checksums are dropped and fetched again.
func openLayer(ctx context.Context, lb *lazyBlob, d v1.Descriptor, retries int) (*overlaybd.Blob, error) {
	if !overlaybd.IsOverlaybdLayer(d) {
		return nil, fmt.Errorf("not an overlaybd layer (no %s annotation); convert the image with dejavu image convert", overlaybd.AnnotationBlobDigest)
	}
	return openBlob(ctx, lb, lb, opening{lb}, retries)
}

// openBlob opens the blob read through ra (through open, if not nil, while
// it opens), retrying as openLayer says; what each failed try read is
// dropped from lb's cache.
func openBlob(ctx context.Context, lb *lazyBlob, ra, open io.ReaderAt, retries int) (*overlaybd.Blob, error) {
	var err error
	for try := 0; try <= retries; try++ {
		rec := &recordingReader{r: ra, opening: open}
		rec.recording.Store(true)
		var blob *overlaybd.Blob
		blob, err = overlaybd.OpenBlob(rec, lb.size)
		// The opened blob keeps reading through rec: stop recording.
		rec.recording.Store(false)
		if err == nil {
			return blob, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Whatever was read may be what is wrong: drop it and try again.
		for _, r := range rec.ranges {
			lb.dropRange(r[0], r[1])
		}
	}
	return nil, err
}

// recordingReader notes the ranges read through it while recording, and
// reads them through opening if set.
type recordingReader struct {
	r, opening io.ReaderAt
	recording  atomic.Bool
	mu         sync.Mutex
	ranges     [][2]int64
}

func (r *recordingReader) ReadAt(p []byte, off int64) (int, error) {
	if r.recording.Load() {
		r.mu.Lock()
		r.ranges = append(r.ranges, [2]int64{off, off + int64(len(p))})
		r.mu.Unlock()
		if r.opening != nil {
			return r.opening.ReadAt(p, off)
		}
	}
	return r.r.ReadAt(p, off)
}

// layerReader tags checksum failures with the layer they happened in.
type layerReader struct {
	layer int
	r     io.ReaderAt
}

type blockFault struct {
	layer      int
	start, end int64 // payload coordinates
	err        error
}

func (e *blockFault) Error() string { return fmt.Sprintf("layer %d: %v", e.layer, e.err) }
func (e *blockFault) Unwrap() error { return e.err }

func (l layerReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := l.r.ReadAt(p, off)
	var be *zfile.BlockError
	if err != nil && errors.As(err, &be) {
		err = &blockFault{layer: l.layer, start: be.Start, end: be.End, err: err}
	}
	return n, err
}
