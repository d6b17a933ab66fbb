package overlaybd

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
	"github.com/dejavu-project/dejavu/backstore/zfile"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

func golden(t testing.TB, parts ...string) string {
	return filepath.Join(append([]string{testenv.OverlaybdTestdata(t), "golden"}, parts...)...)
}

func openBlobFile(t testing.TB, p string) *Blob {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenBlob(f, fi.Size())
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return b
}

func gunzip(t testing.TB, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readDevice(t testing.TB, d *lsmt.Device) []byte {
	t.Helper()
	b := make([]byte, d.Size())
	if _, err := d.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHelloWorldBlob(t *testing.T) {
	p := filepath.Join(testenv.OverlaybdTestdata(t), "hello-world-oci-layout", "blobs", "sha256",
		"022231c3f1af70e0cc42f0c3781eabf174cff608210585bf93fc83e16d33672d")
	b := openBlobFile(t, p)
	if !b.Tar || b.PayloadOffset != 1536 || b.Compression() != "lz4" || b.ZFile.BlockSize() != 4096 {
		t.Fatalf("tar %v at %d, compression %s", b.Tar, b.PayloadOffset, b.Compression())
	}
	if got := b.Layer.Stats().Mappings; got != 515 {
		t.Errorf("%d mappings, want 515", got)
	}
	if got := b.Layer.VirtualSize(); got != 64<<30 {
		t.Errorf("virtual size %d, want 64 GiB", got)
	}
	d, err := OpenDevice(b)
	if err != nil {
		t.Fatal(err)
	}
	sb := make([]byte, 2)
	if _, err := d.ReadAt(sb, 1080); err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint16(sb) != 0xEF53 {
		t.Fatalf("no ext4 superblock magic: %x", sb)
	}
}

// TestGoldenStacksAnyMix stacks the golden LSMT layers in every mix of plain
// and compressed (and tar-wrapped) forms.
func TestGoldenStacksAnyMix(t *testing.T) {
	wantLower := gunzip(t, golden(t, "lsmt", "expected_lower.raw.gz"))
	wantMerged := gunzip(t, golden(t, "lsmt", "expected_merged.raw.gz"))
	for _, lower := range []string{"lower.commit", "lower.commit.lz4.tar", "lower.commit.zstd.zfile"} {
		lb := openBlobFile(t, golden(t, "lsmt", lower))
		d, err := OpenDevice(lb)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readDevice(t, d), wantLower) {
			t.Errorf("%s alone differs from expected_lower.raw", lower)
		}
		for _, upper := range []string{"upper.commit", "upper.commit.lz4.zfile"} {
			ub := openBlobFile(t, golden(t, "lsmt", upper))
			d, err := OpenDevice(lb, ub)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readDevice(t, d), wantMerged) {
				t.Errorf("%s + %s differs from expected_merged.raw", lower, upper)
			}
		}
	}
}

// TestTarHeaderMatchesGolden: the wrapper we write is the one overlaybd
// writes, byte for byte, and Unwrap reads both.
func TestTarHeaderMatchesGolden(t *testing.T) {
	for _, name := range []string{"zfile/input.lz4.bs4k.tar.zfile", "zfile/input.zstd.bs16k.tar.zfile", "lsmt/lower.commit.lz4.tar"} {
		gold, err := os.ReadFile(golden(t, name))
		if err != nil {
			t.Fatal(err)
		}
		off, size, tarred, err := Unwrap(bytes.NewReader(gold), int64(len(gold)))
		if err != nil || !tarred || off != 1536 {
			t.Fatalf("%s: Unwrap = %d, %d, %v, %v", name, off, size, tarred, err)
		}
		if int64(len(gold)) != off+size+int64(len(TarTrailer(size))) {
			t.Errorf("%s: blob of %d bytes, want payload %d + padding + two zero blocks", name, len(gold), size)
		}
		ours := TarHeader(size)
		// overlaybd stamps the file header with the layer file's mtime;
		// compare with the mtime and checksum fields masked.
		g := append([]byte{}, gold[:1536]...)
		for _, b := range [][]byte{ours, g} {
			copy(b[1024+136:1024+156], bytes.Repeat([]byte{'#'}, 20))
		}
		if !bytes.Equal(ours, g) {
			for i := range ours {
				if ours[i] != g[i] {
					t.Fatalf("%s: tar header differs at byte %d: ours %q golden %q", name, i, ours[i], g[i])
				}
			}
		}
		if !isTarHeader(TarHeader(size)[1024:1536]) || !isTarHeader(TarHeader(size)[:512]) {
			t.Fatal("our headers fail their own checksum")
		}
	}
}

// TestWriteBlobMatchesGolden writes the golden lower layer again as an
// LZ4-compressed, tar-wrapped blob (overlaybd-commit -z -t) and compares the
// structure: wrapper, ZFile header and trailer fields, and the LSMT layer
// inside, which must be byte-identical.
func TestWriteBlobMatchesGolden(t *testing.T) {
	const KiB, MiB = 1 << 10, 1 << 20
	img := gunzip(t, golden(t, "lsmt", "expected_lower.raw.gz"))
	ext := []lsmt.Extent{{Offset: 0, Length: 64 * KiB}, {Offset: MiB + 512, Length: 4608}, {Offset: 8 * MiB, Length: MiB}, {Offset: 32 * MiB, Length: 128 * KiB}, {Offset: 64*MiB - 8*KiB, Length: 8 * KiB}}
	var buf memFile
	n, err := WriteBlob(&buf, bytes.NewReader(img), ext, 64*MiB, WithLayerOptions(lsmt.WithUUID("AAAAAAAA-BBBB-4CCC-8DDD-000000000001")))
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(buf.b)) {
		t.Fatalf("WriteBlob says %d bytes, wrote %d", n, len(buf.b))
	}
	ours := openBlobFile(t, buf.path(t))
	gold := openBlobFile(t, golden(t, "lsmt", "lower.commit.lz4.tar"))
	if ours.Tar != gold.Tar || ours.PayloadOffset != gold.PayloadOffset || ours.Compression() != gold.Compression() {
		t.Fatalf("wrapper: ours tar=%v off=%d %s, golden tar=%v off=%d %s", ours.Tar, ours.PayloadOffset, ours.Compression(), gold.Tar, gold.PayloadOffset, gold.Compression())
	}
	oh, gh := ours.ZFile.Header(), gold.ZFile.Header()
	if oh.Flags != gh.Flags || oh.BlockSize != gh.BlockSize || oh.OriginalSize != gh.OriginalSize || oh.IndexSize != gh.IndexSize || oh.Verify != gh.Verify || oh.Level != gh.Level {
		t.Errorf("ZFile header: ours %+v\ngolden %+v", oh, gh)
	}
	// The trailer of both, read where overlaybd reads it.
	for name, b := range map[string]*Blob{"ours": ours, "golden": gold} {
		_ = name
		if b.PayloadSize+b.PayloadOffset+int64(len(TarTrailer(b.PayloadSize))) != b.Size {
			t.Errorf("%s: tar padding wrong", name)
		}
	}
	wantLayer, err := os.ReadFile(golden(t, "lsmt", "lower.commit"))
	if err != nil {
		t.Fatal(err)
	}
	gotLayer := make([]byte, ours.ZFile.Size())
	if _, err := ours.ZFile.ReadAt(gotLayer, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotLayer, wantLayer) {
		t.Error("the LSMT layer inside our blob differs from lower.commit")
	}
	// And the blob range of the layer's first data sector is a real range.
	s, e := ours.BlobRange(4096, 512)
	if s < 1536+zfile.HeaderSize || e <= s || e > ours.Size {
		t.Errorf("BlobRange(4096, 512) = %d-%d", s, e)
	}
}

// memFile is an in-memory io.WriterAt that can be spilled to a file.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) path(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(p, m.b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
