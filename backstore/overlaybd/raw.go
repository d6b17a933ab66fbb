package overlaybd

import (
	"context"
	"fmt"
	"os"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
)

// WriteRaw writes the virtual device to f as a sparse raw image: only the
// mapped data is written, everything else stays a hole that reads as zeros.
func WriteRaw(ctx context.Context, dev *lsmt.Device, f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("raw: truncate %s: %w", f.Name(), err)
	}
	buf := make([]byte, 1<<20)
	for _, m := range dev.Index().Mappings() {
		if m.Zeroed {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		off := int64(m.Offset) * lsmt.SectorSize
		end := int64(m.End()) * lsmt.SectorSize
		for off < end {
			n := min(int64(len(buf)), end-off)
			if _, err := dev.ReadAt(buf[:n], off); err != nil {
				return fmt.Errorf("raw: read device at %d: %w", off, err)
			}
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				return fmt.Errorf("raw: write %s at %d: %w", f.Name(), off, err)
			}
			off += n
		}
	}
	if err := f.Truncate(dev.Size()); err != nil {
		return fmt.Errorf("raw: extend %s to %d: %w", f.Name(), dev.Size(), err)
	}
	return nil
}
