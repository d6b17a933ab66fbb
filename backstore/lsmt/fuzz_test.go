package lsmt_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

// seedLayers are small layers from the writer, a few KiB each.
func seedLayers(f testing.TB) [][]byte {
	var out [][]byte
	for _, tc := range []struct {
		vsize int64
		ext   []lsmt.Extent
	}{
		{4096, nil},
		{8192, []lsmt.Extent{{Offset: 512, Length: 1024}, {Offset: 2048, Length: 512, Zeroed: true}, {Offset: 4096, Length: 512}}},
		{64 << 10, []lsmt.Extent{{Offset: 0, Length: 512}, {Offset: 1024, Length: 1024}, {Offset: 60 << 10, Length: 4096, Zeroed: true}}},
	} {
		var buf bytes.Buffer
		if _, err := lsmt.WriteLayer(&buf, bytes.NewReader(sampleSource(int(tc.vsize), 3)), tc.ext, tc.vsize); err != nil {
			f.Fatal(err)
		}
		out = append(out, buf.Bytes())
	}
	// The golden empty layer is small enough to use whole.
	p := filepath.Join(testenv.RepoRoot(f), "..", "shared", "testdata", "overlaybd", "golden", "empty", "empty.commit")
	if b, err := os.ReadFile(p); err == nil {
		out = append(out, b)
	}
	return out
}

// fieldBytes is how much of a header carries fields; the rest is zeros.
// Fuzz inputs hold only these bytes, so that the fuzzer does not spend its
// mutations (and its minimising) on padding.
const fieldBytes = 390

// padHeader returns b as a full header: its first fieldBytes, then zeros.
func padHeader(b []byte) []byte {
	out := make([]byte, lsmt.HeaderSize)
	copy(out, b[:min(len(b), fieldBytes)])
	return out
}

func FuzzParseHeader(f *testing.F) {
	for _, b := range seedLayers(f) {
		f.Add(b[:fieldBytes])
		f.Add(b[len(b)-lsmt.HeaderSize:][:fieldBytes])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = padHeader(b)
		h, err := lsmt.ParseHeader(b)
		if err != nil {
			if len(b) >= lsmt.HeaderSize && !lsmt.IsLSMT(b) && !errors.Is(err, lsmt.ErrNotLSMT) {
				t.Fatalf("bad magic not reported as ErrNotLSMT: %v", err)
			}
			return
		}
		// Marshal keeps at most 36 bytes of a UUID and 255 of the tag; a
		// header that fits those limits survives a round trip unchanged,
		// and any header is stable after one.
		m := h.Marshal()
		h2, err := lsmt.ParseHeader(m)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !bytes.Equal(h2.Marshal(), m) {
			t.Fatal("Marshal is not stable")
		}
		if len(h.UUID) <= 36 && len(h.ParentUUID) <= 36 && len(h.UserTag) <= 255 && h2 != h {
			t.Fatalf("round trip:\n got %+v\nwant %+v", h2, h)
		}
	})
}

// FuzzOpenLayerRead opens arbitrary bytes as a layer; on success the
// index must hold what OpenLayer promises, and a device over the layer must
// read what a sector-by-sector walk of the index computes from the bytes.
func FuzzOpenLayerRead(f *testing.F) {
	for _, b := range seedLayers(f) {
		c := compact(f, b)
		f.Add(c, true, uint64(0), uint16(8192))
		f.Add(c, true, uint64(700), uint16(3000))
	}
	f.Add(seedLayers(f)[1], false, uint64(1000), uint16(2000))
	f.Fuzz(func(t *testing.T, b []byte, compacted bool, off uint64, n uint16) {
		if compacted {
			b = expand(b)
		}
		l, err := lsmt.OpenLayer(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if l != nil {
				t.Fatal("layer returned with an error")
			}
			return
		}
		h := l.Header()
		vsec := h.VirtualSize / lsmt.SectorSize
		dataEnd := h.IndexOffset / lsmt.SectorSize
		var prev uint64
		for i, m := range l.Index() {
			if m.Length == 0 || m.Offset < prev || m.End() > vsec || !m.Zeroed && (m.MOffset < 8 || m.MEnd() > dataEnd) {
				t.Fatalf("mapping %d %v breaks the layer's bounds (virtual %d, data end %d, prev end %d)", i, m, vsec, dataEnd, prev)
			}
			prev = m.End()
		}
		single, err := lsmt.NewDevice(l)
		if err != nil {
			t.Fatal(err)
		}
		// The layer stacked on itself reads the same.
		double, err := lsmt.NewDevice(l, l)
		if err != nil {
			t.Fatal(err)
		}
		size := single.Size()
		start := int64(0)
		if size > 0 {
			start = int64(off % uint64(size))
		}
		p := make([]byte, n)
		got, err := single.ReadAt(p, start)
		want := min(int64(n), size-start)
		if int64(got) != want || err != nil && !(errors.Is(err, io.EOF) && want < int64(n)) {
			t.Fatalf("read %d+%d of %d: %d %v", start, n, size, got, err)
		}
		ref := referenceRead(l.Index(), func(_ uint8, q []byte, at int64) { copy(q, b[at:]) }, start, int(want))
		if !bytes.Equal(p[:got], ref) {
			t.Fatalf("read %d+%d differs from the index walk", start, n)
		}
		q := make([]byte, n)
		if got2, _ := double.ReadAt(q, start); got2 != got || !bytes.Equal(q[:got2], p[:got]) {
			t.Fatal("the layer stacked on itself reads differently")
		}
	})
}

// compact turns a layer into a fuzz input: the field bytes of its header,
// its data and index with the padding entries dropped, the field bytes of
// its trailer. expand undoes it.
func compact(f testing.TB, b []byte) []byte {
	tr, err := lsmt.ParseHeader(b[len(b)-lsmt.HeaderSize:])
	if err != nil {
		f.Fatal(err)
	}
	var index []byte
	raw := b[tr.IndexOffset : tr.IndexOffset+tr.IndexSize*lsmt.MappingSize]
	for i := 0; i < len(raw); i += lsmt.MappingSize {
		if e := getEntry(raw[i:]); e.off != 1<<50-1 {
			index = append(index, raw[i:i+lsmt.MappingSize]...)
		}
	}
	tr.IndexSize = uint64(len(index) / lsmt.MappingSize)
	out := append(bytes.Clone(b[:fieldBytes]), b[lsmt.HeaderSize:tr.IndexOffset]...)
	out = append(out, index...)
	return append(out, tr.Marshal()[:fieldBytes]...)
}

// TestCompactSeeds checks that the compacted seeds still open and read
// as the layers they came from, so that fuzzing starts from valid layers.
func TestCompactSeeds(t *testing.T) {
	for i, b := range seedLayers(t) {
		want, err := openBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := openBytes(expand(compact(t, b)))
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if !slices.Equal(got.Index(), want.Index()) || got.VirtualSize() != want.VirtualSize() {
			t.Fatalf("seed %d: index %v, want %v", i, got.Index(), want.Index())
		}
	}
}

func expand(c []byte) []byte {
	if len(c) < 2*fieldBytes {
		return c
	}
	out := padHeader(c[:fieldBytes])
	out = append(out, c[fieldBytes:len(c)-fieldBytes]...)
	return append(out, padHeader(c[len(c)-fieldBytes:])...)
}

// referenceRead computes device bytes [off, off+n) sector by sector from
// unmerged mappings (a single layer: tag 0), with read filling data.
func referenceRead(index []lsmt.Mapping, read func(tag uint8, p []byte, at int64), off int64, n int) []byte {
	return referenceStack([][]lsmt.Mapping{index}, read, off, n)
}

// referenceStack is the naive model of a stack: each sector comes from the
// topmost layer with a mapping over it.
func referenceStack(layers [][]lsmt.Mapping, read func(tag uint8, p []byte, at int64), off int64, n int) []byte {
	out := make([]byte, n)
	for pos := off; pos < off+int64(n); {
		s := uint64(pos) / lsmt.SectorSize
		next := min(int64(s+1)*lsmt.SectorSize, off+int64(n))
		if tag, m, ok := topmost(layers, s); ok && !m.Zeroed {
			at := int64(m.MOffset+s-m.Offset)*lsmt.SectorSize + pos%lsmt.SectorSize
			read(tag, out[pos-off:next-off], at)
		}
		pos = next
	}
	return out
}

// topmost returns the mapping of the highest layer that covers sector s.
func topmost(layers [][]lsmt.Mapping, s uint64) (uint8, lsmt.Mapping, bool) {
	for li := len(layers) - 1; li >= 0; li-- {
		for _, m := range layers[li] {
			if m.Offset <= s && s < m.End() {
				return uint8(li), m, true
			}
		}
	}
	return 0, lsmt.Mapping{}, false
}

// decodeStack turns fuzz bytes into per-layer mapping lists. Byte 0 picks
// the number of layers and whether lists may be malformed; then 5 bytes per
// mapping: layer, gap (or raw offset), length (2 bytes), flags.
func decodeStack(data []byte) [][]lsmt.Mapping {
	if len(data) == 0 {
		return nil
	}
	nl := 1 + int(data[0]&15)%10
	raw := data[0]&0x80 != 0
	layers := make([][]lsmt.Mapping, nl)
	ends := make([]uint64, nl)
	moffs := make([]uint64, nl)
	for i := 1; i+5 <= len(data) && i < 1+5*600; i += 5 {
		r := data[i : i+5]
		li := int(r[0]) % nl
		flags := r[4]
		length := uint64(binary.LittleEndian.Uint16(r[2:4]))
		if flags&4 == 0 {
			length %= 64
		}
		length %= lsmt.MaxLength + 1
		m := lsmt.Mapping{Zeroed: flags&1 != 0, Tag: flags >> 4}
		if raw {
			m.Offset = uint64(r[1])*4 + uint64(flags>>5)
			if flags&2 != 0 {
				m.Offset = lsmt.MaxOffset - uint64(r[1])
			}
		} else {
			length = max(length, 1)
			gap := uint64(r[1])
			if flags&2 != 0 {
				gap *= 64
			}
			m.Offset = ends[li] + gap
			ends[li] = m.Offset + length
		}
		m.Length = uint32(length)
		if flags&8 != 0 {
			m.MOffset = uint64(r[1]) << 10
		} else {
			m.MOffset = 8 + moffs[li]
			moffs[li] += length
		}
		layers[li] = append(layers[li], m)
	}
	return layers
}

func wellFormed(l []lsmt.Mapping) bool {
	var prev uint64
	for _, m := range l {
		if m.Length == 0 || m.Offset < prev || m.End() > lsmt.MaxOffset {
			return false
		}
		prev = m.End()
	}
	return true
}

// pattern is a layer whose byte at offset o is a hash of (tag, o), so that a
// byte read from the wrong layer or offset shows.
type pattern uint8

func patternByte(tag uint8, o int64) byte {
	h := uint64(o)*0x9e3779b97f4a7c15 + uint64(tag+1)*0xbf58476d1ce4e5b9
	return byte(h >> 56)
}

func (p pattern) ReadAt(b []byte, off int64) (int, error) {
	for i := range b {
		b[i] = patternByte(uint8(p), off+int64(i))
	}
	return len(b), nil
}

// FuzzMerge merges fuzzed mapping lists and compares the result with the
// naive model: every sector maps to the topmost layer that covers it.
func FuzzMerge(f *testing.F) {
	f.Add([]byte{2, 0, 0, 8, 0, 0, 1, 4, 4, 0, 1}, uint16(0), uint16(4096))
	f.Add([]byte{3, 0, 10, 100, 0, 0, 1, 0, 50, 0, 0, 2, 0, 20, 0, 1, 0, 3, 255, 63, 4, 1, 2, 7, 0, 8}, uint16(3), uint16(9000))
	f.Add([]byte{0x82, 0, 10, 5, 0, 0, 0, 2, 4, 0, 0, 1, 0, 0, 0, 0}, uint16(1), uint16(100))
	f.Add([]byte{9, 0, 1, 0, 64, 4, 1, 3, 0, 64, 6, 2, 2, 255, 63, 4, 3, 4, 10, 0, 1, 4, 5, 255, 255, 4, 5, 6, 1, 0, 0, 6, 7, 8, 0, 8, 7, 200, 100, 0, 2, 8, 0, 16, 0, 0, 9, 1, 1, 0, 0}, uint16(7), uint16(32000))
	f.Fuzz(func(t *testing.T, data []byte, pick, rlen uint16) {
		layers := decodeStack(data)
		x, err := lsmt.Merge(layers...)
		valid := true
		for _, l := range layers {
			valid = valid && wellFormed(l)
		}
		if valid != (err == nil) {
			t.Fatalf("Merge error %v, but the lists are well formed: %v", err, valid)
		}
		if err != nil {
			if x != nil {
				t.Fatal("index returned with an error")
			}
			return
		}
		merged := x.Mappings()
		var bounds []uint64
		for _, l := range layers {
			for _, m := range l {
				bounds = append(bounds, m.Offset, m.End())
			}
		}
		slices.Sort(bounds)
		bounds = slices.Compact(bounds)
		inBounds := func(v uint64) bool { _, ok := slices.BinarySearch(bounds, v); return ok }
		var prev uint64
		for i, m := range merged {
			if m.Length == 0 || m.Offset < prev || int(m.Tag) >= len(layers) {
				t.Fatalf("merged mapping %d %v: empty, out of order or bad tag", i, m)
			}
			// A merged mapping starts and ends where some input one does.
			if !inBounds(m.Offset) || !inBounds(m.End()) {
				t.Fatalf("merged mapping %d %v has an edge no input mapping has", i, m)
			}
			prev = m.End()
		}
		// Between consecutive edges both the model and the merged index are
		// a single piece, so checking the first and last sector of each
		// piece checks them all.
		for i := 0; i+1 < len(bounds); i++ {
			for _, s := range []uint64{bounds[i], bounds[i+1] - 1} {
				tag, want, ok := topmost(layers, s)
				got := x.Lookup(nil, s, s+1)
				if !ok {
					if len(got) != 0 {
						t.Fatalf("sector %d: merged %v, but no layer maps it", s, got)
					}
					continue
				}
				if len(got) != 1 || got[0].Tag != tag || got[0].Zeroed != want.Zeroed || got[0].Offset != s || got[0].Length != 1 ||
					!want.Zeroed && got[0].MOffset != want.MOffset+s-want.Offset {
					t.Fatalf("sector %d: merged %v, model layer %d %v", s, got, tag, want)
				}
			}
		}
		if len(bounds) == 0 {
			return
		}
		// Lookup of a range equals filtering and clipping the merged list.
		lo := bounds[int(pick)%len(bounds)] - min(uint64(pick%7), bounds[int(pick)%len(bounds)])
		hi := lo + uint64(rlen%2000) + 1
		var brute []lsmt.Mapping
		for _, m := range merged {
			if m.End() > lo && m.Offset < hi {
				c := m
				c.Offset, c.Length = max(m.Offset, lo), uint32(min(m.End(), hi)-max(m.Offset, lo))
				if !m.Zeroed {
					c.MOffset += c.Offset - m.Offset
				}
				brute = append(brute, c)
			}
		}
		if got := x.Lookup(nil, lo, hi); !slices.Equal(got, brute) {
			t.Fatalf("Lookup(%d,%d) = %v, want %v", lo, hi, got, brute)
		}
		// A device over pattern layers reads what the model reads.
		readers := make([]io.ReaderAt, len(layers))
		for i := range readers {
			readers[i] = pattern(i)
		}
		last := bounds[len(bounds)-1]
		size := int64(last+8) * lsmt.SectorSize
		d, err := lsmt.NewDeviceFromIndex(x, readers, size)
		if err != nil {
			t.Fatal(err)
		}
		off := max(int64(lo)*lsmt.SectorSize-int64(pick%1000), 0)
		n := int(min(int64(rlen%(32<<10))+1, size-off))
		p := make([]byte, n)
		if got, err := d.ReadAt(p, off); got != n || err != nil {
			t.Fatalf("device read %d+%d of %d: %d %v", off, n, size, got, err)
		}
		want := referenceStack(layers, func(tag uint8, q []byte, at int64) { pattern(tag).ReadAt(q, at) }, off, n)
		if !bytes.Equal(p, want) {
			i := 0
			for p[i] == want[i] {
				i++
			}
			t.Fatalf("device read %d+%d differs from the model first at byte %d (sector %d)", off, n, off+int64(i), (off+int64(i))/512)
		}
	})
}
