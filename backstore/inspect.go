package backstore

import (
	"context"

	"github.com/dejavu-project/dejavu/backstore/overlaybd"
)

// ImageReport is how an image's layers are stored and, when they all are
// overlaybd layers, what their merged device holds.
type ImageReport struct {
	Image    string                  `json:"image"`
	Manifest string                  `json:"manifest,omitempty"` // digest; none for local blob files
	Layers   []LayerReport           `json:"layers"`
	Device   *overlaybd.DeviceReport `json:"device,omitempty"`
}

// LayerReport is one layer of an ImageReport.
type LayerReport struct {
	Index     int                    `json:"index"`
	Digest    string                 `json:"digest,omitempty"`
	Path      string                 `json:"path,omitempty"` // a local blob file's
	MediaType string                 `json:"mediaType,omitempty"`
	Overlaybd bool                   `json:"overlaybd"`
	Error     string                 `json:"error,omitempty"` // why it is not overlaybd
	Layer     *overlaybd.LayerReport `json:"layer,omitempty"`
}

// Inspect reports how the layers of ref are stored. Unlike Open it accepts
// layers that are not overlaybd, and says why they are not; and besides a
// registry reference or an OCI layout (oci:DIR[:TAG]), ref may name local
// layer blob files, bottom first (file:A,B). Of a registry image only the
// layers' headers and indexes are fetched, by range.
func Inspect(ctx context.Context, ref string, opts ...Option) (*ImageReport, error) {
	ib, err := openImageBlobs(ctx, ref, newConfig(opts))
	if err != nil {
		return nil, err
	}
	defer ib.Close()
	rep := &ImageReport{Image: ib.ref.String()}
	if ib.manifest != nil {
		rep.Manifest = ib.digest.String()
	}
	for i := range ib.descs {
		rep.Layers = append(rep.Layers, ib.report(i))
	}
	if ib.overlaybd() == nil && len(ib.blobs) > 0 {
		dev, err := overlaybd.OpenDevice(ib.blobs...)
		if err != nil {
			return nil, err
		}
		d := overlaybd.DescribeDevice(dev)
		rep.Device = &d
	}
	return rep, nil
}

func (ib *imageBlobs) report(i int) LayerReport {
	d := ib.descs[i]
	l := LayerReport{Index: i, MediaType: string(d.MediaType), Overlaybd: ib.errs[i] == nil}
	if d.Digest.Hex != "" {
		l.Digest = d.Digest.String()
	} else {
		l.Path = d.Annotations["path"]
	}
	if ib.errs[i] != nil {
		l.Error = ib.errs[i].Error()
		return l
	}
	r := ib.blobs[i].Describe()
	r.Digest, r.MediaType = l.Digest, l.MediaType
	l.Layer = &r
	return l
}
