package backstore

import (
	"context"
	"os"

	"github.com/dejavu-project/dejavu/backstore/overlaybd"
)

// WriteRaw writes the merged virtual device of ref (any reference Inspect
// takes) to the file out as a sparse raw disk image: only mapped data is
// written, the rest stays holes. A registry image's layers are fetched
// whole first, side by side, as a pull would. The file appears only when
// it is complete: it is written beside out and renamed.
func WriteRaw(ctx context.Context, ref, out string, opts ...Option) (overlaybd.DeviceReport, error) {
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
	tmp := out + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return overlaybd.DeviceReport{}, err
	}
	err = overlaybd.WriteRaw(ctx, dev, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, out)
	}
	if err != nil {
		os.Remove(tmp)
		return overlaybd.DeviceReport{}, err
	}
	return overlaybd.DescribeDevice(dev), nil
}
