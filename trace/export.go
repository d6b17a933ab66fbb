package trace

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/dejavu-project/dejavu/backstore/overlaybd"
)

// overlaybd's trace file: a 24-byte header (u32 magic, padding, u64 data
// size, u32 CRC32C of the records, padding) and 24-byte records (op byte,
// padding, u32 layer index, u64 count, i64 offset in the uncompressed layer
// file), as overlaybd's C++ structs lay them out on x86-64.
const (
	OverlaybdTraceMagic = 3270449184
	overlaybdRecordSize = 24
	overlaybdMaxIO      = 1 << 20 // overlaybd replays at most this much per record
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32cExtend continues a CRC32C without pre- or post-inversion, the way
// overlaybd's crc32c_extend does.
func crc32cExtend(crc uint32, p []byte) uint32 { return ^crc32.Update(^crc, castagnoli, p) }

// ExportOverlaybd writes t as overlaybd's own trace file, for the
// unmodified overlaybd's recordTracePath. Blob ranges are turned into ranges
// of each layer's uncompressed file through the opened blobs (bottom
// first, the image's layers).
func ExportOverlaybd(w io.Writer, t *Trace, blobs []*overlaybd.Blob) error {
	if len(blobs) != len(t.Layers) {
		return fmt.Errorf("trace: export: %d blobs for %d layers", len(blobs), len(t.Layers))
	}
	var body []byte
	rec := make([]byte, overlaybdRecordSize)
	for _, r := range t.Records {
		b := blobs[r.Layer]
		var off, n int64
		if b.ZFile != nil {
			off, n = b.ZFile.UncompressedRange(r.Offset-b.PayloadOffset, r.End()-b.PayloadOffset)
		} else {
			lo := max(r.Offset-b.PayloadOffset, 0)
			hi := min(r.End()-b.PayloadOffset, b.PayloadSize)
			off, n = lo, hi-lo
		}
		for n > 0 {
			k := min(n, overlaybdMaxIO)
			clear(rec)
			rec[0] = 'R'
			binary.LittleEndian.PutUint32(rec[4:], uint32(r.Layer))
			binary.LittleEndian.PutUint64(rec[8:], uint64(k))
			binary.LittleEndian.PutUint64(rec[16:], uint64(off))
			body = append(body, rec...)
			off, n = off+k, n-k
		}
	}
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], OverlaybdTraceMagic)
	binary.LittleEndian.PutUint64(hdr[8:], uint64(len(body)))
	var crc uint32
	for i := 0; i < len(body); i += overlaybdRecordSize {
		crc = crc32cExtend(crc, body[i:i+overlaybdRecordSize])
	}
	binary.LittleEndian.PutUint32(hdr[16:], crc)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}
