package overlaybd

import (
	"context"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
)

// rawPiece is the most one read of WriteRaw asks the device for.
const rawPiece = 1 << 20

// WriteRaw writes the virtual device to f as a sparse raw image: only the
// mapped data is written, everything else stays a hole that reads as zeros.
// Pieces are read and written by a few workers at once (one a CPU, at most
// four): reading a compressed layer is decompressing it.
func WriteRaw(ctx context.Context, dev *lsmt.Device, f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("raw: truncate %s: %w", f.Name(), err)
	}
	type piece struct{ off, n int64 }
	pieces := make(chan piece)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(pieces)
		for _, m := range dev.Index().Mappings() {
			if m.Zeroed {
				continue
			}
			end := int64(m.End()) * lsmt.SectorSize
			for off := int64(m.Offset) * lsmt.SectorSize; off < end; off += rawPiece {
				select {
				case pieces <- piece{off, min(rawPiece, end-off)}:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		return nil
	})
	for range min(runtime.GOMAXPROCS(0), 4) {
		g.Go(func() error {
			buf := make([]byte, rawPiece)
			for p := range pieces {
				if _, err := dev.ReadAt(buf[:p.n], p.off); err != nil {
					return fmt.Errorf("raw: read device at %d: %w", p.off, err)
				}
				if _, err := f.WriteAt(buf[:p.n], p.off); err != nil {
					return fmt.Errorf("raw: write %s at %d: %w", f.Name(), p.off, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := f.Truncate(dev.Size()); err != nil {
		return fmt.Errorf("raw: extend %s to %d: %w", f.Name(), dev.Size(), err)
	}
	return nil
}
