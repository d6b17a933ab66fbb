package backstore

import (
	"context"

	"github.com/dejavu-project/dejavu/backstore/overlaybd"
	"github.com/dejavu-project/dejavu/internal/safefile"
)

// WriteRaw writes the merged virtual device of ref (any reference Inspect
// takes) to the file out as a sparse raw disk image: only mapped data is
// written, the rest stays holes. A registry image's layers are fetched
// whole first, side by side, as a pull would. The file appears only when
// it is complete: it is written beside out and renamed. An existing
// regular file at out is replaced only with replace; anything else there
// (a device node, a symbolic link, a directory, a FIFO) never is, and that
// is checked before any layer is fetched.
func WriteRaw(ctx context.Context, ref, out string, replace bool, opts ...Option) (overlaybd.DeviceReport, error) {
	if err := safefile.Check(out, safefile.WithReplace(replace)); err != nil {
		return overlaybd.DeviceReport{}, err
	}
	ib, err := openImageBlobs(ctx, ref, newConfig(opts))
	if err != nil {
		return overlaybd.DeviceReport{}, err
	}
	defer ib.Close()
	if err := ib.overlaybd(); err != nil {
		return overlaybd.DeviceReport{}, err
	}
	if err := ib.fetchAll(ctx); err != nil {
		return overlaybd.DeviceReport{}, err
	}
	dev, err := overlaybd.OpenDevice(ib.blobs...)
	if err != nil {
		return overlaybd.DeviceReport{}, err
	}
	f, err := safefile.Create(out, safefile.WithReplace(replace))
	if err != nil {
		return overlaybd.DeviceReport{}, err
	}
	defer f.Close()
	if err := overlaybd.WriteRaw(ctx, dev, f.File); err != nil {
		return overlaybd.DeviceReport{}, err
	}
	if err := f.Commit(); err != nil {
		return overlaybd.DeviceReport{}, err
	}
	return overlaybd.DescribeDevice(dev), nil
}
