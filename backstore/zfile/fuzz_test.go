package zfile_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dejavu-project/dejavu/backstore/zfile"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// goldenSeeds returns the golden files small enough to seed a fuzzer whole,
// and the first and last KiB of the larger ones (which the fuzzer can mend
// or break further). Without the fixtures it returns nothing: the committed
// corpus still seeds the targets.
func goldenSeeds(f *testing.F) [][]byte {
	dir := filepath.Join(testenv.RepoRoot(f), "..", "shared", "testdata", "overlaybd", "golden")
	var out [][]byte
	if b, err := os.ReadFile(filepath.Join(dir, "empty", "empty.commit.lz4.zfile")); err == nil {
		out = append(out, b)
	}
	for _, name := range []string{"input.lz4.bs4k.zfile", "input.zstd.bs4k.zfile"} {
		b, err := os.ReadFile(filepath.Join(dir, "zfile", name))
		if err != nil || len(b) < 2048 {
			continue
		}
		out = append(out, append(bytes.Clone(b[:1024]), b[len(b)-1024:]...))
	}
	return out
}

// smallFiles are valid files made by the writer, a few KiB each.
func smallFiles(f *testing.F) [][]byte {
	var out [][]byte
	text := bytes.Repeat([]byte("seed text for the fuzzer. "), 400)
	for _, o := range [][]zfile.WriterOption{
		{zfile.WithAlgorithm(zfile.LZ4)},
		{zfile.WithAlgorithm(zfile.Zstd), zfile.WithHeaderIndex(false)},
		{zfile.WithAlgorithm(zfile.LZ4), zfile.WithBlockSize(8 << 10), zfile.WithHeaderIndex(false)},
	} {
		out = append(out, compress(f, text, o...))
	}
	out = append(out, compress(f, nil), compress(f, mixedInput(3000, 9), zfile.WithAlgorithm(zfile.Zstd)))
	return out
}

func FuzzParseHeader(f *testing.F) {
	for _, b := range append(smallFiles(f), goldenSeeds(f)...) {
		f.Add(b[:zfile.HeaderSize])
		f.Add(b[len(b)-zfile.HeaderSize:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := zfile.ParseHeader(b)
		if err != nil {
			if !zfile.IsZFile(b) && !errors.Is(err, zfile.ErrNotZFile) && len(b) >= zfile.HeaderSize {
				t.Fatalf("bad magic not reported as ErrNotZFile: %v", err)
			}
			return
		}
		if !zfile.IsZFile(b) {
			t.Fatal("parsed bytes without the magic")
		}
		// Encoding and decoding again keeps every field; Marshal always
		// sets the digest.
		h2, err := zfile.ParseHeader(h.Marshal())
		if err != nil {
			t.Fatalf("re-parse of a marshalled header: %v", err)
		}
		want := h
		want.Flags |= zfile.FlagDigest
		want.Digest = h2.Digest
		if h2 != want {
			t.Fatalf("round trip:\n got %+v\nwant %+v", h2, want)
		}
	})
}

// FuzzOpenRead opens arbitrary bytes as a ZFile. On success, reads must
// never fail except with io.EOF or a *BlockError (the bytes are all in
// memory), and a large read must agree with the same range read in pieces.
func FuzzOpenRead(f *testing.F) {
	for _, b := range append(smallFiles(f), goldenSeeds(f)...) {
		f.Add(b, uint32(0), uint32(1<<20), uint8(0))
		f.Add(b, uint32(4000), uint32(300), uint8(7))
	}
	f.Fuzz(func(t *testing.T, b []byte, off, n uint32, how uint8) {
		b = mend(b, how)
		z, err := zfile.Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if z != nil {
				t.Fatal("reader returned with an error")
			}
			return
		}
		h := z.Header()
		if z.Size() != int64(h.OriginalSize) || z.Blocks() != int(h.IndexSize) {
			t.Fatalf("size %d blocks %d, header %+v", z.Size(), z.Blocks(), h)
		}
		prev := int64(zfile.HeaderSize)
		for i := 0; i < z.Blocks(); i++ {
			s, e := z.BlockRange(i)
			if s != prev || e <= s || e > int64(h.IndexOffset) {
				t.Fatalf("block %d at %d-%d after %d, index at %d", i, s, e, prev, h.IndexOffset)
			}
			prev = e
		}
		size := z.Size()
		// Keep one execution cheap: read at most 256 KiB.
		length := int64(n % (256 << 10))
		start := int64(off) % (size + 1)
		whole := make([]byte, length)
		got, werr := z.ReadAt(whole, start)
		checkReadErr(t, werr)
		want := min(length, size-start)
		switch {
		case werr == nil && int64(got) != length,
			errors.Is(werr, io.EOF) && (int64(got) != want || want == length),
			int64(got) > want:
			t.Fatalf("read %d+%d of %d: n = %d, err %v", start, length, size, got, werr)
		}
		// The same range in two reads split at an unaligned point.
		split := length / 3
		a := make([]byte, split)
		na, aerr := z.ReadAt(a, start)
		checkReadErr(t, aerr)
		b2 := make([]byte, length-split)
		nb, berr := z.ReadAt(b2, start+split)
		checkReadErr(t, berr)
		if werr == nil || errors.Is(werr, io.EOF) {
			if aerr != nil && !errors.Is(aerr, io.EOF) || berr != nil && !errors.Is(berr, io.EOF) {
				t.Fatalf("whole read succeeded (%v) but pieces failed: %v, %v", werr, aerr, berr)
			}
			if !bytes.Equal(whole[:na], a[:na]) || !bytes.Equal(whole[split:split+int64(nb)], b2[:nb]) {
				t.Fatal("pieces differ from the whole read")
			}
		}
		var be *zfile.BlockError
		if errors.As(werr, &be) {
			// The block reported bad stays bad when read on its own.
			_, err := z.ReadAt(make([]byte, 1), int64(be.Block)*int64(z.BlockSize()))
			var be2 *zfile.BlockError
			if !errors.As(err, &be2) || be2.Block != be.Block {
				t.Fatalf("block %d failed in a long read (%v) but alone gives %v", be.Block, werr, err)
			}
		}
		if s, e := z.CompressedRange(start, length); s > e || (s < e && (s < zfile.HeaderSize || e > int64(h.IndexOffset))) {
			t.Fatalf("CompressedRange(%d,%d) = %d-%d outside the blocks", start, length, s, e)
		}
	})
}

// mend recomputes checksums after the fuzzer has changed bytes, so that
// it can reach the checks behind them: with how&1 the digests of the header
// and of the last 512 bytes, with how&2 also the index CRC they name, with
// how&4 also the CRC at the end of every block the index describes.
func mend(b []byte, how uint8) []byte {
	if how&7 == 0 || len(b) < 2*zfile.HeaderSize {
		return b
	}
	b = bytes.Clone(b)
	le := binary.LittleEndian
	for _, at := range []int{0, len(b) - zfile.HeaderSize} {
		h := b[at : at+zfile.HeaderSize]
		off, n := le.Uint64(h[40:]), le.Uint64(h[48:])
		if how&6 != 0 && off <= uint64(len(b)) && n <= (uint64(len(b))-off)/4 {
			idx := b[off : off+4*n]
			if how&4 != 0 {
				pos := uint64(zfile.HeaderSize)
				for i := range n {
					l := uint64(le.Uint32(idx[4*i:]))
					if l >= 5 && pos+l <= off {
						le.PutUint32(b[pos+l-4:], crc32cSeed(100007, b[pos:pos+l-4]))
					}
					pos += l
				}
			}
			le.PutUint32(h[64:], crc32cSeed(0, idx))
		}
		le.PutUint32(h[28:], 0)
		le.PutUint32(h[28:], crc32cSeed(0, h))
	}
	return b
}

func checkReadErr(t *testing.T, err error) {
	t.Helper()
	var be *zfile.BlockError
	if err != nil && !errors.Is(err, io.EOF) && !errors.As(err, &be) {
		t.Fatalf("read of an in-memory file failed with %T %v, want io.EOF or a *BlockError", err, err)
	}
	if be != nil && !errors.Is(err, zfile.ErrChecksum) && !errors.Is(err, zfile.ErrCorrupt) {
		t.Fatalf("block error %v is neither a checksum nor a corruption", err)
	}
}

// FuzzRoundTrip compresses fuzz bytes, stretched to a fuzzed length by
// repeating them, and reads them back whole, at a fuzzed range, and from
// only the stored bytes that CompressedRange names.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), uint8(0), uint32(0), uint32(0), uint16(5))
	f.Add([]byte("abcdefgh"), uint8(5), uint32(70000), uint32(4095), uint16(9000))
	f.Add(mixedInput(3000, 4), uint8(2), uint32(100000), uint32(33000), uint16(40000))
	f.Add(mixedInput(2000, 5), uint8(31), uint32(65537), uint32(65530), uint16(20))
	f.Add([]byte{0}, uint8(22), uint32(131072), uint32(0), uint16(65535))
	f.Fuzz(func(t *testing.T, seed []byte, cfg uint8, length, off uint32, n uint16) {
		bs := []int{4 << 10, 8 << 10, 16 << 10, 32 << 10}[cfg&3]
		algo := zfile.LZ4
		if cfg&4 != 0 {
			algo = zfile.Zstd
		}
		in := seed
		if cfg&8 == 0 {
			// Stretch to a length that spans several blocks; each period
			// is shifted by one so that the data is not purely periodic.
			in = make([]byte, length%(160<<10))
			if len(seed) > 0 {
				for i := range in {
					in[i] = seed[i%len(seed)] + byte(i/len(seed))
				}
			}
		}
		opts := []zfile.WriterOption{zfile.WithAlgorithm(algo), zfile.WithBlockSize(bs), zfile.WithHeaderIndex(cfg&16 == 0), zfile.WithWorkers(1 + int(cfg>>5&1))}
		file := compress(t, in, opts...)
		z, err := zfile.Open(bytes.NewReader(file), int64(len(file)))
		if err != nil {
			t.Fatalf("open what the writer wrote: %v", err)
		}
		if z.Size() != int64(len(in)) || z.BlockSize() != bs || z.Header().Algorithm != algo {
			t.Fatalf("size %d bs %d algo %v", z.Size(), z.BlockSize(), z.Header().Algorithm)
		}
		got := make([]byte, len(in))
		if m, err := z.ReadAt(got, 0); m != len(in) || err != nil {
			t.Fatalf("read all: %d %v", m, err)
		}
		if !bytes.Equal(got, in) {
			t.Fatal("round trip differs")
		}
		for i := 0; i < z.Blocks(); i++ {
			if z.StoredSize(i) > zfile.MaxBlockSize {
				t.Fatalf("block %d stored in %d bytes", i, z.StoredSize(i))
			}
		}
		// A range read served only from the stored bytes it needs.
		start := int64(off) % int64(len(in)+1)
		s, e := z.CompressedRange(start, int64(n))
		w := &windowReader{b: file}
		z2, err := zfile.Open(w, int64(len(file)))
		if err != nil {
			t.Fatal(err)
		}
		w.lo, w.hi, w.restrict = s, e, true
		p := make([]byte, n)
		m, err := z2.ReadAt(p, start)
		want := min(int64(n), int64(len(in))-start)
		if int64(m) != want || (err != nil && !(errors.Is(err, io.EOF) && want < int64(n))) {
			t.Fatalf("read %d+%d of %d within %d-%d: %d %v", start, n, len(in), s, e, m, err)
		}
		if !bytes.Equal(p[:m], in[start:start+int64(m)]) {
			t.Fatalf("read %d+%d differs", start, n)
		}
	})
}
