package overlaybd

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
	"github.com/dejavu-project/dejavu/backstore/zfile"
)

// Blob is an opened layer blob: the LSMT layer inside it, the ZFile it may be
// compressed with, and where the payload sits in the blob.
type Blob struct {
	Size          int64 // bytes of the whole blob
	Tar           bool  // the payload is wrapped in tar
	PayloadOffset int64
	PayloadSize   int64
	ZFile         *zfile.Reader // nil when the LSMT layer is stored uncompressed
	Layer         *lsmt.Layer
}

// OpenBlob opens a layer blob of blobSize bytes: tar wrapper (optional),
// ZFile (optional), sealed LSMT layer.
func OpenBlob(ra io.ReaderAt, blobSize int64) (*Blob, error) {
	off, size, tarred, err := Unwrap(ra, blobSize)
	if err != nil {
		return nil, err
	}
	b := &Blob{Size: blobSize, Tar: tarred, PayloadOffset: off, PayloadSize: size}
	payload := io.NewSectionReader(ra, off, size)
	magic := make([]byte, 24)
	if _, err := payload.ReadAt(magic, 0); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("layer blob: payload of %d bytes at %d is too short for a layer", size, off)
		}
		return nil, fmt.Errorf("layer blob: read payload magic at %d: %w", off, err)
	}
	var layerFile io.ReaderAt = payload
	layerSize := size
	switch {
	case zfile.IsZFile(magic):
		z, err := zfile.Open(payload, size)
		if err != nil {
			return nil, fmt.Errorf("layer blob: ZFile at %d: %w", off, err)
		}
		b.ZFile, layerFile, layerSize = z, z, z.Size()
	case lsmt.IsLSMT(magic):
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return nil, fmt.Errorf("layer blob: a gzip-compressed layer, not an overlaybd one (dejavu image convert makes one)")
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return nil, fmt.Errorf("layer blob: a zstd-compressed layer, not an overlaybd one (dejavu image convert makes one)")
	case tarred && off == tarBlock:
		return nil, fmt.Errorf("layer blob: a tar of files, not an overlaybd layer (dejavu image convert makes one)")
	default:
		// The bytes found are not quoted: whatever the blob is, its content
		// is not the error's to show.
		return nil, fmt.Errorf("layer blob: payload at %d is neither ZFile nor LSMT", off)
	}
	l, err := lsmt.OpenLayer(layerFile, layerSize)
	if err != nil {
		return nil, fmt.Errorf("layer blob: %w", err)
	}
	b.Layer = l
	return b, nil
}

// BlobRange returns the range [start, end) of blob bytes that holds the
// layer-file bytes [off, off+n): for a compressed layer the stored blocks
// that decode to them, for an uncompressed one the same bytes shifted by the
// payload offset. This is the range a lazy reader fetches.
func (b *Blob) BlobRange(off, n int64) (start, end int64) {
	if b.ZFile != nil {
		s, e := b.ZFile.CompressedRange(off, n)
		if s == e {
			return 0, 0
		}
		return b.PayloadOffset + s, b.PayloadOffset + e
	}
	lo, hi := max(off, 0), min(off+n, b.PayloadSize)
	if lo >= hi {
		return 0, 0
	}
	return b.PayloadOffset + lo, b.PayloadOffset + hi
}

// FileRange is the inverse of BlobRange: it maps blob bytes [start, end) to
// the range of the layer file they decode to, whole blocks for a compressed
// layer.
func (b *Blob) FileRange(start, end int64) (off, n int64) {
	if b.ZFile != nil {
		return b.ZFile.UncompressedRange(start-b.PayloadOffset, end-b.PayloadOffset)
	}
	lo := max(start-b.PayloadOffset, 0)
	hi := min(end-b.PayloadOffset, b.PayloadSize)
	return lo, hi - lo
}

// Compression names how the layer is stored: "lz4", "zstd" or "none".
func (b *Blob) Compression() string {
	if b.ZFile == nil {
		return "none"
	}
	return b.ZFile.Header().Algorithm.String()
}

// OpenDevice stacks opened blobs, bottom first, into one virtual device.
func OpenDevice(blobs ...*Blob) (*lsmt.Device, error) {
	layers := make([]*lsmt.Layer, len(blobs))
	for i, b := range blobs {
		layers[i] = b.Layer
	}
	return lsmt.NewDevice(layers...)
}
