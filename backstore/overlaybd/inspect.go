package overlaybd

import (
	"github.com/dejavu-project/dejavu/backstore/lsmt"
)

// LayerReport describes one opened layer blob.
type LayerReport struct {
	Digest        string `json:"digest,omitempty"`
	MediaType     string `json:"mediaType,omitempty"`
	BlobSize      int64  `json:"blobSize"`
	Tar           bool   `json:"tar"`
	PayloadOffset int64  `json:"payloadOffset"`
	Compression   string `json:"compression"`
	BlockSize     int    `json:"blockSize,omitempty"`
	Blocks        int    `json:"blocks,omitempty"`
	LayerSize     int64  `json:"layerSize"` // the LSMT file, uncompressed
	VirtualSize   int64  `json:"virtualSize"`
	Mappings      int    `json:"mappings"`
	Padding       int    `json:"paddingEntries"`
	DataBytes     int64  `json:"dataBytes"`
	ZeroedBytes   int64  `json:"zeroedBytes"`
	UUID          string `json:"uuid"`
	ParentUUID    string `json:"parentUUID"`
}

// Describe reports the structure of an opened blob.
func (b *Blob) Describe() LayerReport {
	st := b.Layer.Stats()
	h := b.Layer.Header()
	r := LayerReport{
		BlobSize:      b.Size,
		Tar:           b.Tar,
		PayloadOffset: b.PayloadOffset,
		Compression:   b.Compression(),
		LayerSize:     b.PayloadSize,
		VirtualSize:   b.Layer.VirtualSize(),
		Mappings:      st.Mappings,
		Padding:       st.Padding,
		DataBytes:     st.DataBytes,
		ZeroedBytes:   st.ZeroedBytes,
		UUID:          h.UUID,
		ParentUUID:    h.ParentUUID,
	}
	if b.ZFile != nil {
		r.BlockSize = b.ZFile.BlockSize()
		r.Blocks = b.ZFile.Blocks()
		r.LayerSize = b.ZFile.Size()
	}
	return r
}

// DeviceReport describes the merged device of a stack of layers.
type DeviceReport struct {
	VirtualSize int64 `json:"virtualSize"`
	Mappings    int   `json:"mappings"`
	DataBytes   int64 `json:"dataBytes"`
	ZeroedBytes int64 `json:"zeroedBytes"`
}

// DescribeDevice reports the merged view of a device.
func DescribeDevice(d *lsmt.Device) DeviceReport {
	r := DeviceReport{VirtualSize: d.Size(), Mappings: d.Index().Len()}
	for _, m := range d.Index().Mappings() {
		n := int64(m.Length) * lsmt.SectorSize
		if m.Zeroed {
			r.ZeroedBytes += n
		} else {
			r.DataBytes += n
		}
	}
	return r
}
