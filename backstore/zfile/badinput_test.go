package zfile_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/backstore/zfile"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// mixedInput returns n deterministic bytes in 1000-byte runs of random
// bytes, zeros and text, so that blocks compress to different lengths.
func mixedInput(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	text := []byte("zfile blocks are checked before they are decoded; ")
	out := make([]byte, n)
	for i := 0; i < n; i += 1000 {
		run := out[i:min(i+1000, n)]
		switch (i / 1000) % 3 {
		case 0:
			for j := range run {
				run[j] = byte(r.Uint32())
			}
		case 2:
			for j := range run {
				run[j] = text[(i+j)%len(text)]
			}
		}
	}
	return out
}

// crc32cSeed is the format's CRC32C: from seed, no inversion on entry or exit.
func crc32cSeed(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, crc32.MakeTable(crc32.Castagnoli), p)
}

// sample is a small file made by the package's writer.
type sample struct {
	name  string
	input []byte
	file  []byte
	bs    int
}

func writerSamples(t testing.TB) []sample {
	t.Helper()
	in := mixedInput(50_000, 1)
	return []sample{
		// The header carries the index fields (flags 0x1b).
		{"lz4-4k-header-index", in, compress(t, in), 4 << 10},
		// Only the trailer does, as overlaybd-zfile writes it (0x13/0x16).
		{"zstd-8k-trailer-index", in, compress(t, in, zfile.WithAlgorithm(zfile.Zstd), zfile.WithBlockSize(8<<10), zfile.WithHeaderIndex(false)), 8 << 10},
	}
}

// effectiveAt returns the offset of the header or trailer that holds the
// index fields of the file b.
func effectiveAt(t testing.TB, b []byte) int {
	t.Helper()
	h, err := zfile.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.HasIndex() {
		return 0
	}
	return len(b) - zfile.HeaderSize
}

// editHeader returns a copy of b with the header or trailer at off decoded,
// changed by f and encoded again with a valid digest.
func editHeader(t testing.TB, b []byte, off int, f func(*zfile.Header)) []byte {
	t.Helper()
	h, err := zfile.ParseHeader(b[off:])
	if err != nil {
		t.Fatal(err)
	}
	f(&h)
	out := bytes.Clone(b)
	copy(out[off:], h.Marshal())
	return out
}

// editIndex returns a copy of b whose jump table was changed by f, with the
// index CRC in the effective header recomputed so that only f's change shows.
func editIndex(t testing.TB, b []byte, f func(lens []uint32)) []byte {
	t.Helper()
	at := effectiveAt(t, b)
	h, _ := zfile.ParseHeader(b[at:])
	out := bytes.Clone(b)
	raw := out[h.IndexOffset : h.IndexOffset+4*h.IndexSize]
	lens := make([]uint32, h.IndexSize)
	for i := range lens {
		lens[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
	f(lens)
	for i, l := range lens {
		binary.LittleEndian.PutUint32(raw[4*i:], l)
	}
	return editHeader(t, out, at, func(h *zfile.Header) { h.IndexCRC = crc32cSeed(0, raw) })
}

// readGolden reads a file of the golden fixtures, or returns nil when the
// fixtures are not beside the repository, so that the cases made by the
// writer still run; with testenv's strict mode a missing fixture fails.
func readGolden(t testing.TB, rel string) []byte {
	t.Helper()
	if _, err := os.Stat(filepath.Join(testenv.RepoRoot(t), "..", "shared", "testdata")); err != nil && !testenv.Strict() {
		t.Logf("golden fixtures not found: %s left out", rel)
		return nil
	}
	b, err := os.ReadFile(filepath.Join(testenv.OverlaybdTestdata(t), "golden", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func open(b []byte) (*zfile.Reader, error) {
	return zfile.Open(bytes.NewReader(b), int64(len(b)))
}

func wantErr(t testing.TB, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not contain %q", err, s)
		}
	}
}

func TestOpenRejectsBadFields(t *testing.T) {
	for _, s := range writerSamples(t) {
		ref, err := open(s.file)
		if err != nil {
			t.Fatal(err)
		}
		eh := ref.Header()
		n, bs := eh.IndexSize, uint64(eh.BlockSize)
		end := len(s.file) - zfile.HeaderSize
		at := effectiveAt(t, s.file)
		field := func(f func(*zfile.Header)) []byte { return editHeader(t, s.file, at, f) }
		cases := []struct {
			name string
			file []byte
			want []string
		}{
			{"block size 0", field(func(h *zfile.Header) { h.BlockSize = 0 }), []string{"block size 0 "}},
			{"block size 1 MiB", field(func(h *zfile.Header) { h.BlockSize = 1 << 20 }), []string{"block size 1048576 "}},
			{"block size not sector aligned", field(func(h *zfile.Header) { h.BlockSize = 5000 }), []string{"block size 5000 "}},
			{"algorithm minilzo", field(func(h *zfile.Header) { h.Algorithm = zfile.MiniLZO }), []string{"compression minilzo is not supported"}},
			{"algorithm unknown", field(func(h *zfile.Header) { h.Algorithm = 9 }), []string{"compression algorithm(9) is not supported"}},
			{"dictionary", field(func(h *zfile.Header) { h.DictSize = 4096 }), []string{"dict_size 4096"}},
			{"compressed jump table", field(func(h *zfile.Header) { h.Flags |= zfile.FlagIndexCompressed }), []string{"compressed jump tables"}},
			{"index size 2^40", field(func(h *zfile.Header) { h.IndexSize = 1 << 40 }), []string{"index claims 1099511627776 blocks"}},
			{"index size one too many", field(func(h *zfile.Header) { h.IndexSize = n + 1; h.OriginalSize = (n + 1) * bs }),
				[]string{fmt.Sprintf("index of %d blocks at offset %d does not fit before the trailer at %d", n+1, eh.IndexOffset, end)}},
			{"index offset 0", field(func(h *zfile.Header) { h.IndexOffset = 0 }), []string{"at offset 0 does not fit"}},
			{"index offset past trailer", field(func(h *zfile.Header) { h.IndexOffset = uint64(len(s.file)) }),
				[]string{fmt.Sprintf("at offset %d does not fit before the trailer at %d", len(s.file), end)}},
			{"index offset 4 early", field(func(h *zfile.Header) { h.IndexOffset -= 4 }), []string{"index checksum mismatch"}},
			{"index crc", field(func(h *zfile.Header) { h.IndexCRC ^= 1 }),
				[]string{fmt.Sprintf("index checksum mismatch: stored %08x", eh.IndexCRC^1)}},
			{"original size one block more", field(func(h *zfile.Header) { h.OriginalSize += bs }),
				[]string{fmt.Sprintf("original size %d does not match %d blocks of %d bytes", eh.OriginalSize+bs, n, bs)}},
			{"original size one block less", field(func(h *zfile.Header) { h.OriginalSize = (n - 1) * bs }),
				[]string{fmt.Sprintf("original size %d does not match %d blocks", (n-1)*bs, n)}},
			{"original size 0", field(func(h *zfile.Header) { h.OriginalSize = 0 }), []string{"original size 0 does not match"}},
			{"data with no blocks", field(func(h *zfile.Header) { h.IndexSize = 0 }), []string{fmt.Sprintf("original size %d does not match 0 blocks", eh.OriginalSize)}},
			{"index entry 0 empty", editIndex(t, s.file, func(l []uint32) { l[0] = 0 }), []string{"index entry 0: stored length 0 outside 5.."}},
			{"index entry 3 huge", editIndex(t, s.file, func(l []uint32) { l[3] = 1 << 20 }), []string{"index entry 3: stored length 1048576 outside"}},
			{"index entries do not add up", editIndex(t, s.file, func(l []uint32) { l[2]++ }),
				[]string{fmt.Sprintf("blocks end at %d but the index starts at %d", eh.IndexOffset+1, eh.IndexOffset)}},
			{"header magic", flip(s.file, 0, 1), nil},
			{"header second magic", flip(s.file, 20, 0x40), nil},
			{"header digest", flip(s.file, 300, 1), []string{"header digest mismatch"}},
			{"header size field", sizeField(s.file, 0, 97), []string{"size field is 97, want 96"}},
		}
		if at != 0 {
			tr := len(s.file) - zfile.HeaderSize
			trailer := func(f func(*zfile.Header)) []byte { return editHeader(t, s.file, tr, f) }
			cases = append(cases, []struct {
				name string
				file []byte
				want []string
			}{
				{"trailer not sealed", trailer(func(h *zfile.Header) { h.Flags &^= zfile.FlagSealed }), []string{fmt.Sprintf("trailer at %d: flags 0x12 are not those of a sealed data trailer", tr)}},
				{"trailer is a header", trailer(func(h *zfile.Header) { h.Flags |= zfile.FlagHeader }), []string{fmt.Sprintf("trailer at %d: flags 0x17", tr)}},
				{"trailer of an index file", trailer(func(h *zfile.Header) { h.Flags &^= zfile.FlagDataFile }), []string{fmt.Sprintf("trailer at %d: flags 0x14", tr)}},
				{"trailer magic", flip(s.file, tr+3, 0xff), []string{fmt.Sprintf("trailer at %d", tr), "bad magic"}},
				{"trailer digest", flip(s.file, tr+400, 1), []string{fmt.Sprintf("trailer at %d", tr), "header digest mismatch"}},
				{"trailer size field", sizeField(s.file, tr, 0), []string{fmt.Sprintf("trailer at %d", tr), "size field is 0"}},
				{"header is a trailer", append(bytes.Clone(s.file[tr:]), s.file[zfile.HeaderSize:]...), []string{"first 512 bytes are a trailer"}},
			}...)
		}
		for _, tc := range cases {
			t.Run(s.name+"/"+tc.name, func(t *testing.T) {
				z, err := open(tc.file)
				if z != nil {
					t.Fatal("Open returned a reader with an error")
				}
				if tc.want == nil {
					if !errors.Is(err, zfile.ErrNotZFile) {
						t.Fatalf("err = %v, want ErrNotZFile", err)
					}
					return
				}
				wantErr(t, err, tc.want...)
			})
		}
	}
}

func flip(b []byte, at int, mask byte) []byte {
	out := bytes.Clone(b)
	out[at] ^= mask
	return out
}

// sizeField sets the size field of the header at off and recomputes its
// digest, so that only the size field is wrong.
func sizeField(b []byte, off int, v uint32) []byte {
	out := bytes.Clone(b)
	h := out[off : off+zfile.HeaderSize]
	binary.LittleEndian.PutUint32(h[24:], v)
	binary.LittleEndian.PutUint32(h[28:], 0)
	binary.LittleEndian.PutUint32(h[28:], crc32cSeed(0, h))
	return out
}

// TestHeaderOnlyFallsBackToTrailer clears the "header carries the index"
// flag: the reader must then take the index fields from the trailer.
func TestHeaderOnlyFallsBackToTrailer(t *testing.T) {
	s := writerSamples(t)[0]
	b := editHeader(t, s.file, 0, func(h *zfile.Header) {
		h.Flags &^= zfile.FlagHeaderOverwrite
		h.IndexOffset, h.IndexSize, h.OriginalSize, h.IndexCRC = 0, 0, 0, 0
	})
	z, err := open(b)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(s.input))
	if _, err := z.ReadAt(got, 0); err != nil || !bytes.Equal(got, s.input) {
		t.Fatalf("read through the trailer: err %v, equal %v", err, bytes.Equal(got, s.input))
	}
}

func TestOpenTruncated(t *testing.T) {
	files := map[string][]byte{}
	for _, s := range writerSamples(t) {
		files[s.name] = s.file
	}
	for _, name := range []string{"input.lz4.bs4k.zfile", "input.zstd.bs4k.zfile"} {
		if b := readGolden(t, "zfile/"+name); b != nil {
			files["golden/"+name] = b
		}
	}
	for name, b := range files {
		z, err := open(b)
		if err != nil {
			t.Fatal(err)
		}
		h := z.Header()
		first, _ := z.BlockRange(0)
		_, firstEnd := z.BlockRange(0)
		is, ie := int(h.IndexOffset), int(h.IndexOffset+4*h.IndexSize)
		cuts := []int{0, 1, 23, 100, 511, 512, 513, int(first) + 1, int(firstEnd) - 1, 1023, 1024,
			is / 2, is - 1, is, is + 1, is + 2, ie - 1, ie, ie + 1, len(b) - 300, len(b) - 1}
		trailerIndex := effectiveAt(t, b) != 0
		for _, cut := range cuts {
			if cut < 0 || cut >= len(b) {
				continue
			}
			t.Run(fmt.Sprintf("%s/cut%d", name, cut), func(t *testing.T) {
				short := b[:cut]
				z, err := open(short)
				if err == nil {
					t.Fatalf("Open of the first %d of %d bytes succeeded (size %d)", cut, len(b), z.Size())
				}
				switch {
				case cut < 2*zfile.HeaderSize:
					wantErr(t, err, fmt.Sprintf("file of %d bytes is too small", cut))
				case trailerIndex:
					// What sits where the trailer should be is not one.
					wantErr(t, err, fmt.Sprintf("trailer at %d", cut-zfile.HeaderSize))
				default:
					wantErr(t, err, fmt.Sprintf("does not fit before the trailer at %d", cut-zfile.HeaderSize))
				}
			})
		}
		// The full size claimed over a reader that holds less: the index
		// read fails and says where.
		t.Run(name+"/short-reader", func(t *testing.T) {
			_, err := zfile.Open(bytes.NewReader(b[:ie-1]), int64(len(b)))
			if err == nil {
				t.Fatal("no error")
			}
			if trailerIndex {
				wantErr(t, err, "read trailer at")
			} else {
				wantErr(t, err, fmt.Sprintf("read index at %d", is))
			}
		})
	}
}

// failingReaderAt serves b but fails every read that touches [lo, hi).
type failingReaderAt struct {
	b      []byte
	lo, hi int64
}

var errInjected = errors.New("injected read failure")

func (f *failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < f.hi && off+int64(len(p)) > f.lo {
		return 0, errInjected
	}
	return bytes.NewReader(f.b).ReadAt(p, off)
}

func TestReadFailureIsWrapped(t *testing.T) {
	s := writerSamples(t)[1]
	ref, _ := open(s.file)
	lo, hi := ref.BlockRange(3)
	z, err := zfile.Open(&failingReaderAt{b: s.file, lo: lo, hi: hi}, int64(len(s.file)))
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, len(s.input))
	n, err := z.ReadAt(p, 0)
	if !errors.Is(err, errInjected) {
		t.Fatalf("err = %v, want the reader's error wrapped", err)
	}
	s0, _ := ref.BlockRange(0)
	wantErr(t, err, "read blocks", fmt.Sprintf("stored bytes %d-", s0))
	if !bytes.Equal(p[:n], s.input[:n]) {
		t.Fatal("bytes before the failure are wrong")
	}
	// Blocks outside the failing range still read.
	q := make([]byte, 100)
	if _, err := z.ReadAt(q, 2*int64(s.bs)); err != nil || !bytes.Equal(q, s.input[2*s.bs:2*s.bs+100]) {
		t.Fatalf("block 2: %v", err)
	}
}

// TestFlippedBlockByte flips bytes in one stored block (compressed bytes
// and CRC): every read that needs the block must fail with a *BlockError
// naming it and wrapping ErrChecksum, and never return its bytes.
func TestFlippedBlockByte(t *testing.T) {
	type file struct {
		name  string
		b     []byte
		input []byte
	}
	var files []file
	in := mixedInput(200_000, 2)
	for _, algo := range []zfile.Algorithm{zfile.LZ4, zfile.Zstd} {
		for _, bs := range []int{4 << 10, 32 << 10} {
			files = append(files, file{fmt.Sprintf("%v-%dk", algo, bs>>10), compress(t, in, zfile.WithAlgorithm(algo), zfile.WithBlockSize(bs)), in})
		}
	}
	if golden := readGolden(t, "zfile/input_3MiB.bin"); golden != nil {
		for _, name := range []string{"input.lz4.bs4k.zfile", "input.zstd.bs4k.zfile", "input.lz4.bs64k.zfile"} {
			files = append(files, file{"golden/" + name, readGolden(t, "zfile/"+name), golden})
		}
	}
	for _, f := range files {
		ref, err := open(f.b)
		if err != nil {
			t.Fatal(err)
		}
		bs := int64(ref.BlockSize())
		for _, k := range []int{0, 1, ref.Blocks() / 2, ref.Blocks() - 1} {
			start, end := ref.BlockRange(k)
			for _, at := range []int64{start, (start + end) / 2, end - 5, end - 1} {
				t.Run(fmt.Sprintf("%s/block%d/byte%d", f.name, k, at-start), func(t *testing.T) {
					z, err := open(flip(f.b, int(at), 0x10))
					if err != nil {
						t.Fatal(err)
					}
					// A read of the whole file and a one-byte read inside the block.
					for _, r := range []struct{ off, n int64 }{{0, z.Size()}, {int64(k)*bs + 1, 1}} {
						p := make([]byte, r.n)
						n, err := z.ReadAt(p, r.off)
						if !errors.Is(err, zfile.ErrChecksum) {
							t.Fatalf("read %d+%d: err = %v, want ErrChecksum", r.off, r.n, err)
						}
						var be *zfile.BlockError
						if !errors.As(err, &be) || be.Block != k || be.Start != start || be.End != end {
							t.Fatalf("err = %#v, want a BlockError for block %d at %d-%d", err, k, start, end)
						}
						wantErr(t, err, fmt.Sprintf("block %d ", k), fmt.Sprintf("stored bytes %d-%d", start, end))
						if int64(n) > int64(k)*bs-r.off && n > 0 {
							t.Fatalf("read %d+%d returned %d bytes, past the start of bad block %d", r.off, r.n, n, k)
						}
						if !bytes.Equal(p[:n], f.input[r.off:r.off+int64(n)]) {
							t.Fatal("bytes returned before the error are wrong")
						}
					}
					// Other blocks are still served.
					other := (k + 1) % z.Blocks()
					if other != k {
						p := make([]byte, 10)
						if _, err := z.ReadAt(p, int64(other)*bs); err != nil || !bytes.Equal(p, f.input[int64(other)*bs:][:10]) {
							t.Fatalf("block %d next to the bad one: %v", other, err)
						}
					}
				})
			}
		}
	}
}

// TestGarbageBlockWithValidCRC replaces a block's compressed bytes with
// random bytes and a matching CRC: decoding must fail with ErrCorrupt.
func TestGarbageBlockWithValidCRC(t *testing.T) {
	in := mixedInput(100_000, 3)
	r := rand.New(rand.NewPCG(5, 6))
	for _, algo := range []zfile.Algorithm{zfile.LZ4, zfile.Zstd} {
		b := compress(t, in, zfile.WithAlgorithm(algo))
		ref, _ := open(b)
		for _, k := range []int{0, 5, ref.Blocks() - 1} {
			start, end := ref.BlockRange(k)
			bad := bytes.Clone(b)
			body := bad[start : end-4]
			for i := range body {
				body[i] = byte(r.Uint32())
			}
			binary.LittleEndian.PutUint32(bad[end-4:], crc32cSeed(100007, body))
			z, err := open(bad)
			if err != nil {
				t.Fatal(err)
			}
			_, err = z.ReadAt(make([]byte, 1), int64(k)*4096)
			var be *zfile.BlockError
			if !errors.Is(err, zfile.ErrCorrupt) || !errors.As(err, &be) || be.Block != k {
				t.Fatalf("%v block %d: err = %v, want a BlockError wrapping ErrCorrupt", algo, k, err)
			}
			wantErr(t, err, fmt.Sprintf("block %d ", k), algo.String())
		}
	}
}

// TestHugeIndexSizeAllocatesLittle forges index sizes and checks that Open
// fails before memory of that size is asked for.
func TestHugeIndexSizeAllocatesLittle(t *testing.T) {
	s := writerSamples(t)[0]
	huge := editHeader(t, s.file, 0, func(h *zfile.Header) { h.IndexSize = 1 << 40; h.OriginalSize = 1 << 52 })
	// The largest index the reader accepts, in a file that claims to be big
	// enough but holds only the real bytes: memory must follow what is read.
	claimed := int64(1) << 31
	big := editHeader(t, s.file, 0, func(h *zfile.Header) { h.IndexSize = 1 << 28; h.OriginalSize = (1 << 28) * 4096 })
	for _, tc := range []struct {
		name     string
		b        []byte
		size     int64
		want     string
		maxBytes uint64
	}{
		{"2^40 blocks", huge, int64(len(huge)), "index claims 1099511627776 blocks", 64 << 10},
		{"2^40 blocks, big size", huge, 1 << 50, "index claims 1099511627776 blocks", 64 << 10},
		{"2^28 blocks, short reader", big, claimed, "read index at", 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			used := allocated(func() { _, err = zfile.Open(bytes.NewReader(tc.b), tc.size) })
			wantErr(t, err, tc.want)
			if used > tc.maxBytes {
				t.Fatalf("Open allocated %d bytes before failing, want at most %d", used, tc.maxBytes)
			}
		})
	}
}

// allocated returns the bytes the heap handed out while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestParseHeaderShort(t *testing.T) {
	s := writerSamples(t)[0]
	_, err := zfile.ParseHeader(s.file[:511])
	wantErr(t, err, "511 bytes, want 512")
	if _, err := zfile.Open(bytes.NewReader(nil), 0); err == nil {
		t.Fatal("empty file opened")
	}
	z, _ := open(s.file)
	if _, err := z.ReadAt(make([]byte, 1), -1); err == nil || !strings.Contains(err.Error(), "negative offset -1") {
		t.Fatalf("negative offset: %v", err)
	}
	if n, err := z.ReadAt(make([]byte, 1), z.Size()); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d %v", n, err)
	}
}

// TestCompressedRangeExtremes passes offsets and lengths whose sums
// overflow: the range must be clipped, never index out of the table.
func TestCompressedRangeExtremes(t *testing.T) {
	s := writerSamples(t)[0]
	z, err := open(s.file)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := z.BlockRange(0)
	_, last := z.BlockRange(z.Blocks() - 1)
	b1, _ := z.BlockRange(1)
	for _, tc := range []struct {
		off, n     int64
		start, end int64
	}{
		{100, math.MaxInt64, first, last},
		{int64(s.bs), math.MaxInt64, b1, last},
		{math.MinInt64, math.MaxInt64, 0, 0},
		{math.MinInt64 + 5, math.MaxInt64, first, first + z.StoredSize(0)},
		{-10, 11, first, first + z.StoredSize(0)},
		{-10, 10, 0, 0},
		{math.MinInt64, math.MinInt64, 0, 0},
		{math.MaxInt64, math.MaxInt64, 0, 0},
		{0, -1, 0, 0},
	} {
		if s, e := z.CompressedRange(tc.off, tc.n); s != tc.start || e != tc.end {
			t.Errorf("CompressedRange(%d, %d) = %d-%d, want %d-%d", tc.off, tc.n, s, e, tc.start, tc.end)
		}
	}
}
