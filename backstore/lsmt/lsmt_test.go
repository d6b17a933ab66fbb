package lsmt_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

func goldenDir(t testing.TB) string {
	return filepath.Join(testenv.OverlaybdTestdata(t), "golden")
}

func readGz(t testing.TB, p string) []byte {
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

func openLayer(t testing.TB, p string) *lsmt.Layer {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lsmt.OpenLayer(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return l
}

func readAll(t testing.TB, d *lsmt.Device) []byte {
	t.Helper()
	out := make([]byte, d.Size())
	// Uneven chunks cross mapping and sector boundaries.
	for off := int64(0); off < d.Size(); {
		n := min(int64(1<<20+333), d.Size()-off)
		if _, err := d.ReadAt(out[off:off+n], off); err != nil {
			t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
		}
		off += n
	}
	return out
}

func TestGoldenStacks(t *testing.T) {
	dir := goldenDir(t)
	lower := openLayer(t, filepath.Join(dir, "lsmt", "lower.commit"))
	upper := openLayer(t, filepath.Join(dir, "lsmt", "upper.commit"))
	if got := lower.Stats().Mappings; got != 5 {
		t.Errorf("lower: %d mappings, want 5", got)
	}
	if h := upper.Header(); h.UUID != "AAAAAAAA-BBBB-4CCC-8DDD-000000000002" || h.ParentUUID != "AAAAAAAA-BBBB-4CCC-8DDD-000000000001" {
		t.Errorf("upper uuids: %q parent %q", h.UUID, h.ParentUUID)
	}
	d, err := lsmt.NewDevice(lower)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, d), readGz(t, filepath.Join(dir, "lsmt", "expected_lower.raw.gz"))) {
		t.Fatal("lower alone differs from expected_lower.raw")
	}
	d, err = lsmt.NewDevice(lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, d), readGz(t, filepath.Join(dir, "lsmt", "expected_merged.raw.gz"))) {
		t.Fatal("lower+upper differs from expected_merged.raw")
	}
	empty := openLayer(t, filepath.Join(dir, "empty", "empty.commit"))
	if empty.VirtualSize() != 1<<30 || empty.Stats().Mappings != 0 {
		t.Fatalf("empty layer: size %d, %d mappings", empty.VirtualSize(), empty.Stats().Mappings)
	}
}

// extentsOf lists the sector-aligned ranges of b that are not all zero,
// joined across zero gaps shorter than join bytes.
func writesToExtents(writes [][2]int64) []lsmt.Extent {
	var out []lsmt.Extent
	for _, w := range writes {
		out = append(out, lsmt.Extent{Offset: w[0], Length: w[1]})
	}
	return out
}

// TestWriterMatchesGolden writes the golden layers again from the same
// writes (the fixture's gen_payloads.py) and expects byte-identical files:
// header, data order, index joining and padding, trailer.
func TestWriterMatchesGolden(t *testing.T) {
	dir := goldenDir(t)
	const KiB, MiB = 1 << 10, 1 << 20
	const vsize = 64 * MiB
	lowerImg := readGz(t, filepath.Join(dir, "lsmt", "expected_lower.raw.gz"))
	merged := readGz(t, filepath.Join(dir, "lsmt", "expected_merged.raw.gz"))
	lowerExt := writesToExtents([][2]int64{{0, 64 * KiB}, {MiB + 512, 4608}, {8 * MiB, MiB}, {32 * MiB, 128 * KiB}, {vsize - 8*KiB, 8 * KiB}})
	upperExt := []lsmt.Extent{
		{Offset: 16 * KiB, Length: 32 * KiB, Zeroed: true},
		{Offset: MiB, Length: KiB},
		{Offset: 8*MiB + 512*KiB, Length: 128 * KiB},
		{Offset: 8*MiB + 768*KiB, Length: 64 * KiB, Zeroed: true},
		{Offset: 48 * MiB, Length: 100 * KiB},
	}
	for _, tc := range []struct {
		golden string
		src    []byte
		ext    []lsmt.Extent
		opts   []lsmt.LayerOption
	}{
		{"lower.commit", lowerImg, lowerExt, []lsmt.LayerOption{lsmt.WithUUID("AAAAAAAA-BBBB-4CCC-8DDD-000000000001")}},
		{"upper.commit", merged, upperExt, []lsmt.LayerOption{lsmt.WithUUID("AAAAAAAA-BBBB-4CCC-8DDD-000000000002"), lsmt.WithParentUUID("AAAAAAAA-BBBB-4CCC-8DDD-000000000001")}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			gold, err := os.ReadFile(filepath.Join(dir, "lsmt", tc.golden))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := lsmt.WriteLayer(&buf, bytes.NewReader(tc.src), tc.ext, vsize, tc.opts...); err != nil {
				t.Fatal(err)
			}
			ours := buf.Bytes()
			if len(ours) != len(gold) {
				t.Fatalf("size %d, golden %d", len(ours), len(gold))
			}
			for _, part := range []struct {
				name   string
				lo, hi int
			}{
				{"header", 0, lsmt.HeaderSize},
				{"data+index", lsmt.HeaderSize, len(gold) - lsmt.HeaderSize},
				{"trailer", len(gold) - lsmt.HeaderSize, len(gold)},
			} {
				if !bytes.Equal(ours[part.lo:part.hi], gold[part.lo:part.hi]) {
					i := part.lo
					for ours[i] == gold[i] {
						i++
					}
					t.Errorf("%s differs first at byte %d: ours %#x golden %#x", part.name, i, ours[i], gold[i])
				}
			}
		})
	}
}

// TestThreeLayerMerge builds a stack by hand (overwrites, zeroed ranges,
// holes, long mappings) and compares every byte of the merged device with an
// expectation computed by applying the same writes to a plain byte slice.
func TestThreeLayerMerge(t *testing.T) {
	const vsize = 8 << 20
	r := rand.New(rand.NewPCG(7, 8))
	expect := make([]byte, vsize)
	var layers []*lsmt.Layer
	for li := 0; li < 3; li++ {
		// Random non-overlapping extents within this layer.
		var ext []lsmt.Extent
		src := make([]byte, vsize)
		for off := int64(r.IntN(64)) * 512; off < vsize; {
			n := int64(1+r.IntN(40)) * 512
			if r.IntN(10) == 0 {
				n = int64(1+r.IntN(3*lsmt.MaxLength)) * 512 // longer than one mapping
			}
			n = min(n, vsize-off)
			zeroed := r.IntN(4) == 0
			if !zeroed {
				for i := off; i < off+n; i++ {
					src[i] = byte(r.Uint32() | 1) // never zero, so holes are visible
				}
			}
			ext = append(ext, lsmt.Extent{Offset: off, Length: n, Zeroed: zeroed})
			off += n + int64(r.IntN(80))*512 // holes fall through
		}
		for _, e := range ext {
			if e.Zeroed {
				clear(expect[e.Offset : e.Offset+e.Length])
			} else {
				copy(expect[e.Offset:e.Offset+e.Length], src[e.Offset:e.Offset+e.Length])
			}
		}
		var buf bytes.Buffer
		if _, err := lsmt.WriteLayer(&buf, bytes.NewReader(src), ext, vsize); err != nil {
			t.Fatal(err)
		}
		l, err := lsmt.OpenLayer(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	d, err := lsmt.NewDevice(layers...)
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, d)
	for i := range got {
		if got[i] != expect[i] {
			t.Fatalf("byte %d: got %#x, want %#x", i, got[i], expect[i])
		}
	}
	// Unaligned small reads agree too.
	for i := 0; i < 2000; i++ {
		off := r.Int64N(vsize)
		n := r.Int64N(9000) + 1
		b := make([]byte, n)
		m, err := d.ReadAt(b, off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(b[:m], expect[off:off+int64(m)]) {
			t.Fatalf("read %d+%d differs", off, n)
		}
	}
	// The merged index is sorted and non-overlapping.
	var prev uint64
	for _, m := range d.Index().Mappings() {
		if m.Offset < prev || m.Length == 0 {
			t.Fatalf("merged index out of order at %v", m)
		}
		prev = m.End()
	}
}
