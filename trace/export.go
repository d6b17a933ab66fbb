package trace

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/dejavu-project/dejavu/backstore"
	"github.com/dejavu-project/dejavu/internal/safefile"
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

// LayerFile maps blob bytes [start, end) of a layer to the range of its
// uncompressed layer file that they decode to. *backstore.Layer and
// *overlaybd.Blob are LayerFiles.
type LayerFile interface {
	FileRange(start, end int64) (off, n int64)
}

// ExportOverlaybd writes t as overlaybd's own trace file, for the
// unmodified overlaybd's recordTracePath. Blob ranges are turned into ranges
// of each layer's uncompressed file through layers (bottom first, the
// image's layers).
func ExportOverlaybd[L LayerFile](w io.Writer, t *Trace, layers []L) error {
	if len(layers) != len(t.Layers) {
		return fmt.Errorf("trace: export: %d blobs for %d layers", len(layers), len(t.Layers))
	}
	var body []byte
	rec := make([]byte, overlaybdRecordSize)
	for _, r := range t.Records {
		off, n := layers[r.Layer].FileRange(r.Offset, r.End())
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

// ExportImage writes t to the file out as ExportOverlaybd does, mapping its
// ranges through the layers of image, which must be the image t was recorded
// on. Only the layers' headers and indexes are fetched, into a temporary
// cache unless opts name one. out is written as WriteFile writes: through a
// temporary file and a rename, an existing regular file replaced only with
// replace, anything else there never; that is checked before the image is
// opened.
func ExportImage(ctx context.Context, t *Trace, image, out string, replace bool, opts ...backstore.Option) error {
	if err := safefile.Check(out, safefile.WithReplace(replace)); err != nil {
		return fmt.Errorf("trace: export: %w", err)
	}
	cache, err := os.MkdirTemp("", "dejavu-export-")
	if err != nil {
		return fmt.Errorf("trace: export: %w", err)
	}
	defer os.RemoveAll(cache)
	bs, err := backstore.Open(ctx, image, append([]backstore.Option{backstore.WithCacheDir(cache)}, opts...)...)
	if err != nil {
		return err
	}
	defer bs.Close()
	if bs.Digest() != t.Image {
		return fmt.Errorf("the trace was recorded on %s, %s is %s", t.Image, image, bs.Digest())
	}
	f, err := safefile.Create(out, safefile.WithReplace(replace))
	if err != nil {
		return fmt.Errorf("trace: export: %w", err)
	}
	defer f.Close()
	if err := ExportOverlaybd(f, t, bs.Layers()); err != nil {
		return fmt.Errorf("trace: export: %w", err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("trace: export: %w", err)
	}
	return nil
}
