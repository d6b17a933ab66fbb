package lsmt_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

const sampleVSize = 1 << 20

// sampleSource is the device image a sample layer copies its data from:
// no byte is zero, so a wrong zero shows.
func sampleSource(n int, salt byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i>>9) | 1 ^ salt
	}
	return b
}

// sampleLayer writes a small layer with data, a zeroed range and a mapping
// that ends the device: five index entries, padded to 256.
func sampleLayer(t testing.TB) []byte {
	t.Helper()
	const KiB = 1 << 10
	ext := []lsmt.Extent{
		{Offset: 0, Length: 8 * KiB},
		{Offset: 64 * KiB, Length: 4 * KiB, Zeroed: true},
		{Offset: 128 * KiB, Length: 16 * KiB},
		{Offset: 512 * KiB, Length: 512},
		{Offset: sampleVSize - 4*KiB, Length: 4 * KiB},
	}
	var buf bytes.Buffer
	if _, err := lsmt.WriteLayer(&buf, bytes.NewReader(sampleSource(sampleVSize, 0)), ext, sampleVSize); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func trailerOf(t testing.TB, b []byte) lsmt.Header {
	t.Helper()
	h, err := lsmt.ParseHeader(b[len(b)-lsmt.HeaderSize:])
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// editHeaderAt returns a copy of b with the header or trailer at off changed by f.
func editHeaderAt(t testing.TB, b []byte, off int, f func(*lsmt.Header)) []byte {
	t.Helper()
	h, err := lsmt.ParseHeader(b[off:])
	if err != nil {
		t.Fatal(err)
	}
	f(&h)
	out := bytes.Clone(b)
	copy(out[off:], h.Marshal())
	return out
}

// entry is an index entry laid out as the format says, written here
// independently of the package: word0 = offset | length<<50, word1 =
// moffset | zeroed<<55 | tag<<56.
type entry struct {
	off, length, moff uint64
	zeroed            bool
}

func putEntry(b []byte, e entry) {
	w0 := e.off | e.length<<50
	w1 := e.moff
	if e.zeroed {
		w1 |= 1 << 55
	}
	binary.LittleEndian.PutUint64(b, w0)
	binary.LittleEndian.PutUint64(b[8:], w1)
}

func getEntry(b []byte) entry {
	w0 := binary.LittleEndian.Uint64(b)
	w1 := binary.LittleEndian.Uint64(b[8:])
	return entry{off: w0 & (1<<50 - 1), length: w0 >> 50, moff: w1 & (1<<55 - 1), zeroed: w1>>55&1 == 1}
}

// editEntries returns a copy of b whose index entries f changed.
func editEntries(t testing.TB, b []byte, f func(es []entry)) []byte {
	t.Helper()
	h := trailerOf(t, b)
	out := bytes.Clone(b)
	raw := out[h.IndexOffset : h.IndexOffset+h.IndexSize*lsmt.MappingSize]
	es := make([]entry, h.IndexSize)
	for i := range es {
		es[i] = getEntry(raw[i*lsmt.MappingSize:])
	}
	f(es)
	for i, e := range es {
		putEntry(raw[i*lsmt.MappingSize:], e)
	}
	return out
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
	b, err := os.ReadFile(filepath.Join(goldenDir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openBytes(b []byte) (*lsmt.Layer, error) {
	return lsmt.OpenLayer(bytes.NewReader(b), int64(len(b)))
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

func TestOpenLayerRejectsBadFields(t *testing.T) {
	b := sampleLayer(t)
	tr := trailerOf(t, b)
	toff := len(b) - lsmt.HeaderSize
	dataEnd := tr.IndexOffset / lsmt.SectorSize
	es := func(f func([]entry)) []byte { return editEntries(t, b, f) }
	trailer := func(f func(*lsmt.Header)) []byte { return editHeaderAt(t, b, toff, f) }
	header := func(f func(*lsmt.Header)) []byte { return editHeaderAt(t, b, 0, f) }
	flip := func(at int) []byte { c := bytes.Clone(b); c[at] ^= 0x20; return c }
	sizeField := func(at int) []byte {
		c := bytes.Clone(b)
		binary.LittleEndian.PutUint32(c[at+24:], 391)
		return c
	}
	cases := []struct {
		name string
		file []byte
		is   error
		want []string
	}{
		{"header magic", flip(1), lsmt.ErrNotLSMT, nil},
		{"header second magic", flip(23), lsmt.ErrNotLSMT, nil},
		{"header size field", sizeField(0), nil, []string{"size field is 391, want 390"}},
		{"header is a trailer", append(bytes.Clone(b[toff:]), b[lsmt.HeaderSize:]...), nil, []string{"first 4096 bytes are a trailer"}},
		{"index-only file", header(func(h *lsmt.Header) { h.Flags &^= lsmt.FlagDataFile }), nil, []string{"index-only file"}},
		{"trailer magic", flip(toff + 2), lsmt.ErrNotLSMT, []string{fmt.Sprintf("trailer at %d", toff), "is the layer sealed?"}},
		{"trailer size field", sizeField(toff), nil, []string{fmt.Sprintf("trailer at %d", toff), "size field is 391"}},
		{"trailer not sealed", trailer(func(h *lsmt.Header) { h.Flags &^= lsmt.FlagSealed }), nil, []string{fmt.Sprintf("trailer at %d: flags 0x2 are not those of a sealed trailer", toff)}},
		{"trailer is a header", trailer(func(h *lsmt.Header) { h.Flags |= lsmt.FlagHeader }), nil, []string{"flags 0x7 are not those of a sealed trailer"}},
		{"virtual size not in sectors", trailer(func(h *lsmt.Header) { h.VirtualSize = 1000 }), nil, []string{"virtual size 1000 is not a whole number of sectors"}},
		{"virtual size 2^60", trailer(func(h *lsmt.Header) { h.VirtualSize = 1 << 60 }), nil, []string{"virtual size 1152921504606846976"}},
		{"index offset in the header", trailer(func(h *lsmt.Header) { h.IndexOffset = 512 }), nil, []string{"index offset 512 is outside the layer"}},
		{"index offset not aligned", trailer(func(h *lsmt.Header) { h.IndexOffset += 8 }), nil, []string{fmt.Sprintf("index offset %d is outside", tr.IndexOffset+8)}},
		{"index offset past the trailer", trailer(func(h *lsmt.Header) { h.IndexOffset = uint64(len(b)) }), nil, []string{fmt.Sprintf("index offset %d is outside the layer (data 4096..%d", len(b), toff)}},
		{"index size 2^40", trailer(func(h *lsmt.Header) { h.IndexSize = 1 << 40 }), nil, []string{"index of 1099511627776 entries"}},
		{"index size one too many", trailer(func(h *lsmt.Header) { h.IndexSize++ }), nil,
			[]string{fmt.Sprintf("index of %d entries at %d does not fit before the trailer at %d", tr.IndexSize+1, tr.IndexOffset, toff)}},
		{"mapping past the data area", es(func(e []entry) { e[2].moff = dataEnd - 1 }), nil,
			[]string{"index entry 2 [256+32 -> ", fmt.Sprintf("points outside the data area (sectors 8..%d)", dataEnd)}},
		{"mapping before the data area", es(func(e []entry) { e[0].moff = 4 }), nil, []string{"index entry 0 [0+16 -> 4 tag 0]", "points outside the data area"}},
		{"mapping past the virtual size", es(func(e []entry) { e[4].off = sampleVSize/512 - 1 }), nil,
			[]string{"index entry 4 [2047+8", "goes past the virtual size (2048 sectors)"}},
		{"overlapping mappings", es(func(e []entry) { e[1].off = e[0].off + 1 }), nil, []string{"index entry 1 [1+8", "overlaps or precedes the previous one (ends at 16)"}},
		{"unsorted mappings", es(func(e []entry) { e[1], e[3] = e[3], e[1] }), nil, []string{"index entry 2 [256+32", "overlaps or precedes the previous one (ends at 1025)"}},
		{"zero-length mapping", es(func(e []entry) { e[3].length = 0 }), nil, []string{"index entry 3 [1024+0", "has length 0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := openBytes(tc.file)
			if l != nil {
				t.Fatal("OpenLayer returned a layer with an error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			if tc.is == nil || tc.want != nil {
				wantErr(t, err, tc.want...)
			}
		})
	}
}

// TestOpenLayerAcceptsOddButValid covers entries the format allows: a
// zeroed mapping needs no data, whatever its moffset, and padding entries
// are skipped wherever they are.
func TestOpenLayerAcceptsOddButValid(t *testing.T) {
	b := sampleLayer(t)
	zeroedFar := editEntries(t, b, func(e []entry) { e[1].moff = 1<<55 - 1 })
	padMiddle := editEntries(t, b, func(e []entry) { e[2] = entry{off: 1<<50 - 1} })
	for name, f := range map[string][]byte{"zeroed far moffset": zeroedFar, "padding in the middle": padMiddle} {
		l, err := openBytes(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d, err := lsmt.NewDevice(l)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4096)
		if _, err := d.ReadAt(got, 64<<10); err != nil || !bytes.Equal(got, make([]byte, 4096)) {
			t.Fatalf("%s: zeroed range: %v", name, err)
		}
	}
	if l, _ := openBytes(padMiddle); len(l.Index()) != 4 || l.Stats().Padding != 252 {
		t.Fatalf("padding in the middle: %d mappings, %d padding", len(l.Index()), l.Stats().Padding)
	}
}

func TestOpenLayerTruncated(t *testing.T) {
	files := map[string][]byte{"sample": sampleLayer(t)}
	for _, name := range []string{"lsmt/lower.commit", "lsmt/upper.commit", "empty/empty.commit"} {
		if b := readGolden(t, name); b != nil {
			files["golden/"+name] = b
		}
	}
	for name, b := range files {
		tr := trailerOf(t, b)
		is, ie := int(tr.IndexOffset), int(tr.IndexOffset+tr.IndexSize*lsmt.MappingSize)
		cuts := []int{0, 24, 4095, 4096, 4097, 8191, 8192, 8193, is / 2, is - 1, is, is + 16, (is + ie) / 2, ie - 1, ie, ie + 1, len(b) - 2048, len(b) - 1}
		for _, cut := range cuts {
			if cut < 0 || cut >= len(b) {
				continue
			}
			t.Run(fmt.Sprintf("%s/cut%d", name, cut), func(t *testing.T) {
				_, err := openBytes(b[:cut])
				if cut < 2*lsmt.HeaderSize {
					wantErr(t, err, fmt.Sprintf("layer of %d bytes is too small", cut))
					return
				}
				// Whatever sits where the trailer should be is not one.
				wantErr(t, err, fmt.Sprintf("trailer at %d", cut-lsmt.HeaderSize), "is the layer sealed?")
			})
		}
		t.Run(name+"/short-reader", func(t *testing.T) {
			_, err := lsmt.OpenLayer(bytes.NewReader(b[:ie]), int64(len(b)))
			wantErr(t, err, fmt.Sprintf("read trailer at %d", len(b)-lsmt.HeaderSize))
		})
		if ie > is {
			t.Run(name+"/index-read-fails", func(t *testing.T) {
				_, err := lsmt.OpenLayer(&failingReaderAt{r: bytes.NewReader(b), lo: int64(ie - 1), hi: int64(ie)}, int64(len(b)))
				if !errors.Is(err, errInjected) {
					t.Fatalf("err = %v, want the reader's error", err)
				}
				wantErr(t, err, fmt.Sprintf("read index at %d", is))
			})
		}
	}
}

// sparseReaderAt serves a layer's bytes as if the file were size bytes
// long: its trailer at the end, zeros between. A forged index size then
// "fits", and memory must still only follow what is actually decoded.
type sparseReaderAt struct {
	b    []byte
	size int64
}

func (s *sparseReaderAt) ReadAt(p []byte, off int64) (int, error) {
	head := int64(len(s.b) - lsmt.HeaderSize)
	for i := range p {
		o := off + int64(i)
		switch {
		case o < head:
			p[i] = s.b[o]
		case o >= s.size-lsmt.HeaderSize && o < s.size:
			p[i] = s.b[head+o-(s.size-lsmt.HeaderSize)]
		case o >= s.size:
			return i, io.EOF
		default:
			p[i] = 0
		}
	}
	return len(p), nil
}

func TestHugeIndexSizeAllocatesLittle(t *testing.T) {
	b := sampleLayer(t)
	toff := len(b) - lsmt.HeaderSize
	huge := editHeaderAt(t, b, toff, func(h *lsmt.Header) { h.IndexSize = 1 << 40 })
	most := editHeaderAt(t, b, toff, func(h *lsmt.Header) { h.IndexSize = 1 << 26 })
	for _, tc := range []struct {
		name     string
		ra       io.ReaderAt
		size     int64
		want     string
		maxBytes uint64
	}{
		{"2^40 entries", bytes.NewReader(huge), int64(len(huge)), "index of 1099511627776 entries", 64 << 10},
		{"2^40 entries in a 2^60 byte file", &sparseReaderAt{huge, 1 << 60}, 1 << 60, "index of 1099511627776 entries", 64 << 10},
		// The largest index allowed, in a 4 GiB file of zeros after the
		// real entries: the first all-zero entry stops it.
		{"2^26 entries in a 4 GiB file", &sparseReaderAt{most, 4 << 30}, 4 << 30, "index entry 256 [0+0 -> 0 tag 0] has length 0", 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			used := allocated(func() { _, err = lsmt.OpenLayer(tc.ra, tc.size) })
			wantErr(t, err, tc.want)
			if used > tc.maxBytes {
				t.Fatalf("OpenLayer allocated %d bytes before failing, want at most %d", used, tc.maxBytes)
			}
		})
	}
}

func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

var errInjected = errors.New("injected read failure")

// failingReaderAt fails every read that touches [lo, hi) of r.
type failingReaderAt struct {
	r      io.ReaderAt
	lo, hi int64
}

func (f *failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < f.hi && off+int64(len(p)) > f.lo {
		return 0, errInjected
	}
	return f.r.ReadAt(p, off)
}

// TestDeviceLayerReadFails stacks two layers and makes the upper layer's
// reader fail, or come up short: ReadAt must return the error wrapped with
// the layer and offsets, and correct bytes before it.
func TestDeviceLayerReadFails(t *testing.T) {
	lowerB := sampleLayer(t)
	const KiB = 1 << 10
	var ub bytes.Buffer
	upperSrc := sampleSource(sampleVSize, 0x80)
	if _, err := lsmt.WriteLayer(&ub, bytes.NewReader(upperSrc), []lsmt.Extent{{Offset: 4 * KiB, Length: 8 * KiB}}, sampleVSize); err != nil {
		t.Fatal(err)
	}
	lower, err := openBytes(lowerB)
	if err != nil {
		t.Fatal(err)
	}
	upper, err := openBytes(ub.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	good, err := lsmt.NewDevice(lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 64*KiB)
	if _, err := good.ReadAt(want, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want[4*KiB:12*KiB], upperSrc[4*KiB:12*KiB]) || !bytes.Equal(want[:4*KiB], sampleSource(4*KiB, 0)) {
		t.Fatal("stack does not read as written")
	}
	dataStart := int64(lsmt.HeaderSize)
	for _, tc := range []struct {
		name string
		ra   io.ReaderAt
		is   error
	}{
		{"error", &failingReaderAt{r: bytes.NewReader(ub.Bytes()), lo: dataStart, hi: dataStart + 1}, errInjected},
		{"short", bytes.NewReader(ub.Bytes()[:dataStart+100]), io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := lsmt.NewDeviceFromIndex(good.Index(), []io.ReaderAt{lower.ReaderAt(), tc.ra}, good.Size())
			if err != nil {
				t.Fatal(err)
			}
			p := make([]byte, 64*KiB)
			n, err := d.ReadAt(p, 0)
			if !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			wantErr(t, err, "layer 1: read 8192 bytes at 4096 for device offset 4096")
			if n != 4*KiB || !bytes.Equal(p[:n], want[:n]) {
				t.Fatalf("%d bytes before the error (want 4096), equal %v", n, bytes.Equal(p[:n], want[:n]))
			}
			// Reads that do not touch the failing layer still work.
			q := make([]byte, 2*KiB)
			if _, err := d.ReadAt(q, 16*KiB); err != nil || !bytes.Equal(q, want[16*KiB:18*KiB]) {
				t.Fatalf("read beside the failing layer: %v", err)
			}
		})
	}
	if _, err := good.ReadAt(make([]byte, 1), -5); err == nil || !strings.Contains(err.Error(), "negative offset -5") {
		t.Fatalf("negative offset: %v", err)
	}
	if n, err := good.ReadAt(make([]byte, 1), good.Size()); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d %v", n, err)
	}
	if n, err := good.ReadAt(make([]byte, 1024), good.Size()-512); n != 512 || err != io.EOF {
		t.Fatalf("read across the end: %d %v", n, err)
	}
	_, err = lsmt.NewDeviceFromIndex(good.Index(), []io.ReaderAt{lower.ReaderAt()}, good.Size())
	wantErr(t, err, "names layer 1 of 1")
	if _, err := lsmt.NewDevice(); err == nil {
		t.Fatal("a device without layers")
	}
}

func TestMergeRejectsBadLists(t *testing.T) {
	ok := []lsmt.Mapping{{Offset: 0, Length: 8, MOffset: 8}, {Offset: 100, Length: 8, MOffset: 16}}
	for _, tc := range []struct {
		name string
		bad  []lsmt.Mapping
		want string
	}{
		{"unsorted", []lsmt.Mapping{{Offset: 10, Length: 5, MOffset: 8}, {Offset: 2, Length: 4, MOffset: 8}}, "mapping 1 [2+4 -> 8 tag 0] overlaps or precedes the previous one (ends at 15)"},
		{"overlapping", []lsmt.Mapping{{Offset: 10, Length: 5, MOffset: 8}, {Offset: 14, Length: 4, MOffset: 8}}, "mapping 1 [14+4"},
		{"zero length", []lsmt.Mapping{{Offset: 10, Length: 0, MOffset: 8}}, "mapping 0 [10+0 -> 8 tag 0] has length 0"},
		{"past the last sector", []lsmt.Mapping{{Offset: lsmt.MaxOffset - 2, Length: 4}}, "mapping 0 [1125899906842621+4 -> 0 tag 0] goes past sector 1125899906842623"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := lsmt.Merge(ok, tc.bad, ok)
			if x != nil {
				t.Fatal("Merge returned an index with an error")
			}
			wantErr(t, err, "merge layer 1: "+tc.want)
		})
	}
	many := make([][]lsmt.Mapping, lsmt.MaxLayers+1)
	_, err := lsmt.Merge(many...)
	wantErr(t, err, "256 layers, at most 255")
}

func TestWriteLayerRejectsBadExtents(t *testing.T) {
	src := bytes.NewReader(sampleSource(sampleVSize, 0))
	for _, tc := range []struct {
		name  string
		ext   []lsmt.Extent
		vsize int64
		want  string
	}{
		{"virtual size 0", nil, 0, "virtual size 0 is not a positive multiple of 512"},
		{"virtual size unaligned", nil, 1000, "virtual size 1000"},
		{"unaligned offset", []lsmt.Extent{{Offset: 100, Length: 512}}, sampleVSize, "extent 0 (100+512) is not a non-empty whole number of sectors"},
		{"unaligned length", []lsmt.Extent{{Offset: 0, Length: 513}}, sampleVSize, "extent 0 (0+513)"},
		{"zero length", []lsmt.Extent{{Offset: 0, Length: 0}}, sampleVSize, "extent 0 (0+0)"},
		{"negative offset", []lsmt.Extent{{Offset: -512, Length: 1024}}, sampleVSize, "extent 0 (-512+1024) overlaps the previous one or passes the virtual size"},
		{"overlapping", []lsmt.Extent{{Offset: 0, Length: 1024}, {Offset: 512, Length: 512}}, sampleVSize, "extent 1 (512+512) overlaps"},
		{"past the virtual size", []lsmt.Extent{{Offset: sampleVSize - 512, Length: 1024}}, sampleVSize, "passes the virtual size 1048576"},
		// Offset+Length wraps around: the check must not be fooled.
		{"overflowing length", []lsmt.Extent{{Offset: 512, Length: math.MaxInt64 - 511}}, sampleVSize, "extent 0 (512+9223372036854775296) overlaps the previous one or passes the virtual size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := lsmt.WriteLayer(&buf, src, tc.ext, tc.vsize)
			wantErr(t, err, tc.want)
		})
	}
}
