package zfile_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/dejavu-project/dejavu/backstore/zfile"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// tarPayload returns the ZFile inside a golden file, skipping overlaybd's tar
// wrapper (payload at 1536, length from the PAX size record) when present.
// The wrapper itself is tested in package overlaybd; here the offsets are
// taken from the fixture README.
func goldenZFile(t *testing.T, name string) (*os.File, int64, int64) {
	t.Helper()
	p := filepath.Join(testenv.OverlaybdTestdata(t), "golden", name)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	head := make([]byte, 512)
	if _, err := f.ReadAt(head, 0); err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if string(head[257:262]) == "ustar" {
		// Only the golden files made with -t are wrapped; their payload sizes
		// are recorded in the PAX header, parsed by the overlaybd package.
		pax := make([]byte, 512)
		f.ReadAt(pax, 512)
		var size int64
		for _, line := range bytes.Split(pax, []byte("\n")) {
			if i := bytes.Index(line, []byte(" size=")); i >= 0 {
				for _, c := range line[i+6:] {
					size = size*10 + int64(c-'0')
				}
			}
		}
		return f, 1536, size
	}
	return f, 0, fi.Size()
}

func TestGoldenDecode(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(testenv.OverlaybdTestdata(t), "golden", "zfile", "input_3MiB.bin"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		algo      zfile.Algorithm
		blockSize int
		flags     uint64 // effective header (trailer) flags
	}{
		{"zfile/input.lz4.bs4k.zfile", zfile.LZ4, 4096, 0x16},
		{"zfile/input.lz4.bs4k.tar.zfile", zfile.LZ4, 4096, 0x16},
		{"zfile/input.zstd.bs4k.zfile", zfile.Zstd, 4096, 0x16},
		{"zfile/input.zstd.bs16k.tar.zfile", zfile.Zstd, 16384, 0x16},
		{"zfile/input.lz4.bs64k.zfile", zfile.LZ4, 65536, 0x16},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, base, size := goldenZFile(t, tc.name)
			z, err := zfile.Open(io.NewSectionReader(f, base, size), size)
			if err != nil {
				t.Fatal(err)
			}
			h := z.Header()
			if h.Algorithm != tc.algo || z.BlockSize() != tc.blockSize || h.Flags != tc.flags || !h.Verify {
				t.Fatalf("header: algo %v bs %d flags %#x verify %v", h.Algorithm, z.BlockSize(), h.Flags, h.Verify)
			}
			if z.Size() != int64(len(want)) {
				t.Fatalf("size %d, want %d", z.Size(), len(want))
			}
			got := make([]byte, len(want))
			if _, err := z.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("decoded bytes differ from input_3MiB.bin")
			}
			// Random unaligned reads agree too.
			r := rand.New(rand.NewPCG(1, 2))
			for i := 0; i < 200; i++ {
				off := r.Int64N(int64(len(want)))
				n := r.Int64N(100000) + 1
				buf := make([]byte, n)
				m, err := z.ReadAt(buf, off)
				if off+n > int64(len(want)) {
					if !errors.Is(err, io.EOF) || int64(m) != int64(len(want))-off {
						t.Fatalf("read past end: n=%d err=%v", m, err)
					}
				} else if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf[:m], want[off:off+int64(m)]) {
					t.Fatalf("read at %d+%d differs", off, n)
				}
			}
		})
	}
}

// memWriterAt is an in-memory io.WriterAt.
type memWriterAt struct{ b []byte }

func (m *memWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func compress(t testing.TB, data []byte, opts ...zfile.WriterOption) []byte {
	t.Helper()
	var m memWriterAt
	w, err := zfile.NewWriter(&m, opts...)
	if err != nil {
		t.Fatal(err)
	}
	// Uneven writes exercise the buffering.
	for rest := data; len(rest) > 0; {
		k := min(len(rest), 7777)
		if _, err := w.Write(rest[:k]); err != nil {
			t.Fatal(err)
		}
		rest = rest[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(m.b)) {
		t.Fatalf("Size %d, wrote %d", w.Size(), len(m.b))
	}
	return m.b
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	rnd := make([]byte, 700_001)
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 20000)
	inputs := map[string][]byte{
		"empty": nil, "one": {7}, "random": rnd, "text": text,
		"zeros": make([]byte, 1<<20), "mixed": append(append(append([]byte{}, rnd...), make([]byte, 300000)...), text...),
	}
	for _, algo := range []zfile.Algorithm{zfile.LZ4, zfile.Zstd} {
		for _, bs := range []int{4 << 10, 8 << 10, 16 << 10, 32 << 10} {
			for name, in := range inputs {
				t.Run(algo.String()+"/"+name, func(t *testing.T) {
					b := compress(t, in, zfile.WithAlgorithm(algo), zfile.WithBlockSize(bs), zfile.WithWorkers(3))
					z, err := zfile.Open(bytes.NewReader(b), int64(len(b)))
					if err != nil {
						t.Fatal(err)
					}
					if z.Size() != int64(len(in)) || z.BlockSize() != bs {
						t.Fatalf("size %d bs %d", z.Size(), z.BlockSize())
					}
					got := make([]byte, len(in))
					if n, err := z.ReadAt(got, 0); err != nil || n != len(in) {
						t.Fatalf("ReadAt: %d %v", n, err)
					}
					if !bytes.Equal(got, in) {
						t.Fatal("round trip differs")
					}
					for i := 0; i < z.Blocks(); i++ {
						if s := z.StoredSize(i); s > zfile.MaxBlockSize {
							t.Fatalf("block %d stored in %d bytes", i, s)
						}
					}
				})
			}
		}
	}
}

func TestWriterRefuses64K(t *testing.T) {
	var m memWriterAt
	_, err := zfile.NewWriter(&m, zfile.WithBlockSize(64<<10))
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("64 KiB")) {
		t.Fatalf("64 KiB blocks: err = %v", err)
	}
	if _, err := zfile.NewWriter(&m, zfile.WithBlockSize(5000)); err == nil {
		t.Fatal("5000-byte blocks accepted")
	}
}

func TestCompressedRange(t *testing.T) {
	in := bytes.Repeat([]byte("abcdefgh"), 100000)
	b := compress(t, in)
	z, err := zfile.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ off, n int64 }{{0, 1}, {4095, 2}, {4096, 4096}, {10000, 300000}, {int64(len(in)) - 1, 100}} {
		s, e := z.CompressedRange(tc.off, tc.n)
		first, last := int(tc.off/4096), int((min(tc.off+tc.n, int64(len(in)))-1)/4096)
		ws, _ := z.BlockRange(first)
		_, we := z.BlockRange(last)
		if s != ws || e != we {
			t.Fatalf("CompressedRange(%d,%d) = %d-%d, want %d-%d", tc.off, tc.n, s, e, ws, we)
		}
		// Decoding from only those stored bytes must work: once the index
		// is loaded, every other byte of the file is hidden.
		w := &windowReader{b: b}
		z2, err := zfile.Open(w, int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		w.lo, w.hi, w.restrict = s, e, true
		got := make([]byte, tc.n)
		n, err := z2.ReadAt(got, tc.off)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("read %d+%d within its compressed range: %v", tc.off, tc.n, err)
		}
		if !bytes.Equal(got[:n], in[tc.off:tc.off+int64(n)]) {
			t.Fatal("bytes differ")
		}
	}
	if s, e := z.CompressedRange(int64(len(in)), 10); s != e {
		t.Fatal("range past the end is not empty")
	}
}

// windowReader serves all of b, or once restricted only [lo,hi) of it.
type windowReader struct {
	b        []byte
	lo, hi   int64
	restrict bool
}

func (w *windowReader) ReadAt(p []byte, off int64) (int, error) {
	if w.restrict && (off < w.lo || off+int64(len(p)) > w.hi) {
		return 0, errors.New("read outside the window")
	}
	return copy(p, w.b[off:]), nil
}

// Every read, aligned or not, of one block or of hundreds, gives the bytes
// written. (Reads decoded on several goroutines at once broke this while
// zstd was handed the rest of the caller's buffer as spare capacity: it
// writes there as it goes.)
func TestRandomReads(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	// Blocks of every kind: text-like runs with repeats (long matches
	// and literals, where zstd's copies overrun), noise, and zeros.
	data := make([]byte, 3<<20+1234)
	words := []string{"lazily ", "loaded ", "image ", "prefetch ", "trace ", "\n", "block "}
	for i := 0; i < len(data); {
		switch k := (i / 4096) % 5; {
		case k == 3:
			data[i] = byte(r.Uint32())
			i++
		case k == 4:
			i++
		default:
			i += copy(data[i:], words[r.IntN(len(words))])
		}
	}
	for _, alg := range []zfile.Algorithm{zfile.Zstd, zfile.LZ4} {
		b := compress(t, data, zfile.WithAlgorithm(alg), zfile.WithBlockSize(4096))
		z, err := zfile.Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		for range 300 {
			off := r.Int64N(int64(len(data)))
			n := 1 + r.Int64N(min(600<<10, int64(len(data))-off))
			if r.IntN(3) == 0 {
				off = off / 4096 * 4096
			}
			p := make([]byte, n)
			if _, err := z.ReadAt(p, off); err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("%v: read %d+%d: %v", alg, off, n, err)
			}
			if !bytes.Equal(p, data[off:off+n]) {
				t.Fatalf("%v: read %d+%d: wrong bytes", alg, off, n)
			}
		}
	}
}
